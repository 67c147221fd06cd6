"""Writing playlists (never onto a music file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from musicrec_gui.core.audio import AUDIO_EXTENSIONS
from musicrec_gui.core.library import Track


def song_label(track: Track) -> str:
    """"Artist - Title", or the title alone when the artist is unknown."""
    return f"{track.artist} - {track.title}" if track.artist else track.title


def check_playlist_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or ValueError if it has an audio file's extension (a playlist never replaces a song)."""
    output = Path(path)
    if output.suffix.lower() in AUDIO_EXTENSIONS:
        raise ValueError(f"refusing to write a playlist to {output}: that name is an audio file's.")
    return output


def write_m3u8(path: str | os.PathLike, tracks: Sequence[Track], *, title: str) -> Path:
    """Write ``tracks`` as an extended M3U playlist in UTF-8, atomically.

    Parameters
    ----------
    path : str or PathLike
        The playlist file; its folder is created if needed.
    tracks : sequence of Track
        In playlist order.
    title : str
        The ``#PLAYLIST`` name.

    Raises
    ------
    ValueError
        If ``path`` has an audio file's extension: a playlist must never replace a song.
    OSError
        If the file cannot be written.
    """
    output = check_playlist_path(path)
    lines = ["#EXTM3U", f"#PLAYLIST:{title}"]
    for track in tracks:
        lines.append(f"#EXTINF:{int(round(track.duration)) or -1},{song_label(track)}")
        lines.append(track.display_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(output)
    return output
