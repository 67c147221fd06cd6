"""Writing playlists (never onto a file musicrec did not write)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import Track
from musicrec_gui.core.names import single_line_text
from musicrec_gui.core.output import OutputRefused, check_output_path, write_atomically

PLAYLIST_SUFFIXES = (".m3u8", ".m3u")
# A comment line (players skip '#' lines that are not directives) that marks the file as
# musicrec's: only such a file is replaced without force.
MARKER = "# written by musicrec"
HEADER = ("#EXTM3U", "#EXTENC:UTF-8", MARKER)


class PlaylistError(MusicrecError, ValueError):
    """No song of a playlist can be named in an M3U8 file; the message says why and how to fix it.

    A ``ValueError`` too, as it was before it became a :class:`MusicrecError`.
    """


def song_label(track: Track) -> str:
    """"Artist - Title" (a hyphen), or the title alone when the artist is unknown.

    The form players parse in ``#EXTINF`` lines, and the form the CLI matches a typed song against.
    """
    return f"{track.artist} - {track.title}" if track.artist else track.title


def display_name(track: Track) -> str:
    """"Artist – Title" (an en dash), or the title alone: how a song is named to a person, in the
    app and in playlist titles."""
    return f"{track.artist} – {track.title}" if track.artist else track.title


def playlist_title(anchor: Track) -> str:
    """The ``#PLAYLIST`` name of a playlist of songs like ``anchor``, the same from the app and the CLI.

    >>> playlist_title(Track(1, "/m/a.ogg", 1, 1, "Blue", "Ann", "", 0.0, "done", ""))
    'Songs like Ann – Blue'
    """
    return f"Songs like {display_name(anchor)}"


def is_musicrec_playlist(path: str | os.PathLike) -> bool:
    """True if ``path`` starts like a playlist musicrec wrote (``#EXTM3U`` and the marker line)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        try:
            head = os.read(fd, 512)
        finally:
            os.close(fd)
    except OSError:
        return False
    lines = head.decode("utf-8", errors="replace").splitlines()
    return bool(lines) and lines[0] == HEADER[0] and MARKER in lines[1:4]


def check_playlist_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check, before any work, that a playlist may be written to ``path``.

    Parameters
    ----------
    path : str or PathLike
        Must end in ``.m3u8`` or ``.m3u`` (any case).
    force : bool
        Replace an existing regular file even if musicrec did not write it.

    Returns
    -------
    Path
        The file to write (the file a symbolic link leads to, if ``path`` is one).

    Raises
    ------
    OutputRefused
        A ValueError whose message says why: wrong extension, a folder or special file,
        an existing file musicrec did not write (``forceable``), or a folder that cannot
        be written.
    """
    return check_output_path(path, suffixes=PLAYLIST_SUFFIXES, what="a playlist",
                             is_ours=is_musicrec_playlist, force=force)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class PlaylistWritten:
    """What :func:`write_m3u8` wrote.

    Attributes
    ----------
    path : Path
        The playlist file.
    written : int
        Songs in it.
    not_utf8 : tuple of str
        Paths left out because they are not valid UTF-8 (M3U8 is UTF-8 text).
    multi_line : tuple of str
        Paths left out because they contain a line break (M3U is one path per line): CR,
        LF, or another Unicode line boundary (VT, FF, FS, GS, RS, NEL, U+2028, U+2029).
    """

    path: Path
    written: int
    not_utf8: tuple[str, ...] = field(default=())
    multi_line: tuple[str, ...] = field(default=())

    @property
    def skipped(self) -> tuple[str, ...]:
        return self.not_utf8 + self.multi_line

    @property
    def warnings(self) -> list[str]:
        """One sentence per kind of skipped song, for the user."""
        out = []
        if self.not_utf8:
            out.append(f"skipped {_plural(len(self.not_utf8), 'song whose file name is', 'songs whose file names are')}"
                       " not valid UTF-8: an M3U8 playlist is UTF-8 text and cannot name such a file; "
                       "rename it to include it.")
        if self.multi_line:
            out.append(f"skipped {_plural(len(self.multi_line), 'song whose file name contains', 'songs whose file names contain')}"
                       " a line break: an M3U playlist has one file name per line; rename it to include it.")
        return out


def write_m3u8(path: str | os.PathLike, tracks: Sequence[Track], *, title: str, force: bool = False) -> PlaylistWritten:
    """Write ``tracks`` as an extended M3U playlist in UTF-8, atomically.

    The file starts with ``#EXTM3U``, ``#EXTENC:UTF-8`` and the comment
    ``# written by musicrec``, by which musicrec later knows it may replace it. Titles
    lose their control characters (a newline in a tag cannot start an entry of its own).
    Songs whose paths cannot be written as one UTF-8 line are left out and reported.

    Parameters
    ----------
    path : str or PathLike
        The playlist file, ending in ``.m3u8`` or ``.m3u``; its folder is created if needed.
    tracks : sequence of Track
        In playlist order.
    title : str
        The ``#PLAYLIST`` name.
    force : bool
        Replace an existing regular file even if musicrec did not write it.

    Returns
    -------
    PlaylistWritten
        The file, the number of songs written and the songs skipped.

    Raises
    ------
    OutputRefused
        As :func:`check_playlist_path`.
    PlaylistError
        A ValueError, if no song at all can be written.
    OSError
        If the file cannot be written; an existing playlist is then left as it was.
    """
    output = check_playlist_path(path, force=force)
    lines = [*HEADER, f"#PLAYLIST:{single_line_text(title)}"]
    not_utf8: list[str] = []
    multi_line: list[str] = []
    for track in tracks:
        try:
            track.path.encode("utf-8")
        except UnicodeEncodeError:
            not_utf8.append(track.path)
            continue
        if track.path.splitlines() != [track.path]:  # \n, \r, and the other line ends of Unicode
            multi_line.append(track.path)
            continue
        lines.append(f"#EXTINF:{int(round(track.duration)) or -1},{single_line_text(song_label(track))}")
        lines.append(track.path)
    written = (len(lines) - len(HEADER) - 1) // 2
    result = PlaylistWritten(output, written, tuple(not_utf8), tuple(multi_line))
    if not written and tracks:
        raise PlaylistError(f"no playlist written: none of the {len(tracks)} songs can be named in it; "
                         + " ".join(result.warnings))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    write_atomically(output, lambda handle: handle.write(data))
    return result


__all__ = ["MARKER", "OutputRefused", "PLAYLIST_SUFFIXES", "PlaylistError", "PlaylistWritten", "check_playlist_path",
           "display_name", "is_musicrec_playlist", "playlist_title", "song_label", "write_m3u8"]
