"""``musicrec mpd``: keep an MPD queue going with songs like the one playing (blissify's role for bliss).

MPD names songs by their path relative to its ``music_directory``; musicrec's library knows them by
their real path. :class:`SongMap` joins the two for a library scanned from the same folder MPD
plays from. :class:`QueueKeeper` decides what to add (no network); :func:`keep_queue` watches MPD
with its ``idle`` command and adds it. python-mpd2 is imported only by :func:`connect`.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.explore import next_songs
from musicrec_gui.core.library import Library, Track, is_below, real_path
from musicrec_gui.core.names import display_text
from musicrec_gui.core.playlist import song_label
from musicrec_gui.core.recommend import Recommendation, VectorIndex, closeness_percent

# Seconds an MPD command may take before the connection is called dead (idle waits for ever).
COMMAND_TIMEOUT = 30


class MpdError(MusicrecError):
    """MPD cannot be reached or refuses what musicrec asks, or python-mpd2 is not installed."""


def load_mpd():
    """The python-mpd2 module, or an :class:`MpdError` saying how to install it."""
    try:
        import mpd
    except ImportError:
        raise MpdError("'musicrec mpd' needs the python-mpd2 package, which is not installed. Install it with "
                       "pip install 'musicrec[mpd]' (or 'pipx inject musicrec python-mpd2' for a pipx install).") from None
    return mpd


class SongMap:
    """MPD's song URIs ↔ library paths, for a library scanned from MPD's music directory.

    Parameters
    ----------
    music_dir : str
        The folder MPD's ``music_directory`` names (links resolved, as the library stores paths).
    """

    def __init__(self, music_dir: str | os.PathLike):
        self.root = real_path(music_dir)

    def path_of(self, uri: str) -> str | None:
        """The file MPD means by ``uri`` (None for a stream: ``http://…`` and the like)."""
        if uri.startswith("file://"):
            return urllib.parse.unquote(uri[len("file://"):])
        if os.path.isabs(uri):
            return uri
        if "://" in uri:
            return None
        return os.path.join(self.root, uri)

    def uri_of(self, track: Track) -> str | None:
        """The URI MPD knows ``track`` by (None when it lies outside the music directory or is not UTF-8)."""
        if not is_below(track.path, self.root):
            return None
        uri = os.path.relpath(track.path, self.root).replace(os.sep, "/")
        try:
            uri.encode("utf-8")
        except UnicodeEncodeError:  # MPD speaks UTF-8 only
            return None
        return uri


@dataclass(frozen=True)
class QueueOptions:
    ahead: int = 3  # songs to keep queued after the one playing
    exclude_same_artist: bool = False
    exclude_same_album: bool = False


@dataclass(frozen=True)
class Addition:
    uri: str
    recommendation: Recommendation
    like: Track  # the song playing when it was chosen


class QueueKeeper:
    """What to add to MPD's queue so that ``options.ahead`` songs like the one playing follow it.

    A song is never added twice: not one played since the keeper started, not one in the queue
    (played or still to come), nor another file of the same recording. Messages for the user
    (the song playing is not in the library, not analysed, …) go to ``say``, once per song.

    Parameters
    ----------
    library : Library
    load_index : callable
        Builds the index of the analysed songs below the music directory; called again when a
        song playing is in the library but not in the index (analysed since).
    songs : SongMap
    options : QueueOptions
    say : callable
        Takes one line for the user.
    """

    def __init__(self, library: Library, load_index: Callable[[], VectorIndex], songs: SongMap,
                 options: QueueOptions, say: Callable[[str], None]):
        self.library = library
        self._load_index = load_index
        self.index = load_index()
        self.songs = songs
        self.options = options
        self.say = say
        self.played: list[int] = []
        self._refused: set[int] = set()  # songs MPD would not add (its database does not have them)
        self._ids: dict[str, int | None] = {}
        self._told: set[tuple[str, str]] = set()

    def _tell(self, uri: str, what: str, message: str) -> None:
        if (uri, what) not in self._told:
            self._told.add((uri, what))
            self.say(message)

    def _id_of(self, uri: str) -> int | None:
        if uri not in self._ids:
            path = self.songs.path_of(uri)
            track = self.library.track_by_path(path) if path is not None else None
            self._ids[uri] = track.id if track is not None else None
        return self._ids[uri]

    def anchor(self, uri: str) -> Track | None:
        """The library's song for the URI MPD plays, or None (after saying why there is none)."""
        shown = display_text(uri)
        path = self.songs.path_of(uri)
        if path is None:
            self._tell(uri, "stream", f"playing {shown}: a stream, not a file of the music directory; "
                                      "musicrec adds songs after files it has analysed.")
            return None
        if not os.path.exists(path):
            self._tell(uri, "absent", f"playing {shown}, but there is no such file at {display_text(path)}. "
                                      f"Is {display_text(self.songs.root)} the folder MPD's music_directory names? "
                                      "Pass that folder as --music-dir.")
            return None
        track = self.library.track_by_path(path)
        if track is None:
            self._tell(uri, "unknown", f"playing {shown}: it is not in musicrec's library, so nothing is added "
                                       f"after it. Run 'musicrec scan {display_text(self.songs.root)}' to analyse "
                                       "the music directory (it picks up new files only).")
            return None
        if track.id not in self.index:
            self.index = self._load_index()  # analysed since musicrec mpd started?
            self._ids.clear()
        if track.id not in self.index:
            if track.status == "failed":
                why = (f"it could not be analysed ({display_text(track.error)}); repair the file, then run "
                       f"'musicrec scan --retry-failed {display_text(self.songs.root)}'.")
            elif not is_below(track.path, self.songs.root):
                why = (f"its file, {display_text(track.path)}, lies outside {display_text(self.songs.root)} "
                       "(a link out of the music directory); musicrec adds only songs below it.")
            else:
                why = (f"it has not been analysed with this encoder and mode yet; run 'musicrec scan "
                       f"{display_text(self.songs.root)}' (with the same --encoder and --mode).")
            self._tell(uri, "unanalysed", f"playing {shown}: nothing is added after it, as {why}")
            return None
        return track

    def plan(self, queue: list[str], position: int | None) -> list[Addition]:
        """The songs to append to ``queue`` (MPD URIs, in order) while the song at ``position`` plays."""
        if position is None or not 0 <= position < len(queue):
            return []
        anchor = self.anchor(queue[position])
        if anchor is None:
            return []
        if anchor.id not in self.played:
            self.played.append(anchor.id)
        need = self.options.ahead - (len(queue) - position - 1)
        if need <= 0:
            return []
        queued = {i for i in (self._id_of(uri) for uri in queue) if i is not None}
        found = next_songs(self.index, current_id=anchor.id, avoid=set(self.played) | queued | self._refused,
                           k=need, exclude_same_artist=self.options.exclude_same_artist,
                           exclude_same_album=self.options.exclude_same_album)
        additions = []
        for rec in found:
            uri = self.songs.uri_of(rec.track)
            if uri is None:
                self._refused.add(rec.track.id)
                continue
            additions.append(Addition(uri, rec, anchor))
        if not found:
            self._tell(queue[position], "none", f"no song left to add after {display_text(song_label(anchor))}: "
                                                "every other analysed song is played, queued or excluded.")
        return additions

    def refused(self, addition: Addition, reason: str) -> None:
        """MPD would not add ``addition`` (its database lacks the file): never offer it again."""
        self._refused.add(addition.recommendation.track.id)
        self.say(f"MPD would not add {display_text(addition.uri)} ({display_text(reason)}); its database may be "
                 "older than musicrec's library: update it (mpc update).")


def describe(addition: Addition) -> str:
    rec = addition.recommendation
    return (f"queued {display_text(song_label(rec.track))} — like {display_text(song_label(addition.like))}, "
            f"closer than {closeness_percent(rec.closeness)} % of song pairs")


def connect(host: str, port: int, password: str | None = None):
    """A python-mpd2 client connected to MPD (``host`` may be a socket path), or an :class:`MpdError`."""
    mpd = load_mpd()
    client = mpd.MPDClient()
    client.timeout = COMMAND_TIMEOUT
    client.idletimeout = None  # idle waits until something happens
    where = host if host.startswith(("/", "@")) else f"{host}:{port}"
    try:
        client.connect(host, port)
    except (OSError, mpd.MPDError) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise MpdError(f"cannot connect to MPD at {where} ({reason}). Is MPD running and listening there (its "
                       "bind_to_address and port)? Pass --host and --port, or set MPD_HOST and MPD_PORT.") from None
    if password:
        try:
            client.password(password)
        except mpd.CommandError as err:
            client.disconnect()
            raise MpdError(f"MPD at {where} refused the password ({err}); pass the one its config sets "
                           "(--password, or MPD_HOST=password@host).") from None
    return client


def music_directory(client, given: str | os.PathLike | None) -> str:
    """The folder MPD plays from: ``given`` (checked), or what MPD says (only over its local socket)."""
    if given is not None:
        if not os.path.isdir(given):
            raise MpdError(f"--music-dir {display_text(os.fspath(given))} is not a folder; give the folder MPD's "
                           "music_directory names (the one you scanned with 'musicrec scan').")
        return real_path(given)
    mpd = load_mpd()
    try:
        folder = client.config()
    except mpd.CommandError:
        folder = None
    if not folder or not os.path.isdir(folder):
        raise MpdError("MPD did not say where its music directory is (it tells only clients on its local socket); "
                       "pass --music-dir with the folder its music_directory names.")
    return real_path(folder)


def keep_queue(client, keeper: QueueKeeper, *, say: Callable[[str], None], rounds: int | None = None) -> None:
    """Top up MPD's queue now and after every change of song or queue, until interrupted.

    Ctrl-C (KeyboardInterrupt) ends it, wherever it waits; ``rounds`` (tests) stops it after that
    many waits. A lost connection or a command MPD refuses raises :class:`MpdError`.
    """
    mpd = load_mpd()
    done = 0
    try:
        while True:
            _top_up(client, keeper, say=say)
            if rounds is not None and done >= rounds:
                return
            client.idle("player", "playlist")
            done += 1
    except mpd.ConnectionError as err:
        raise MpdError(f"lost the connection to MPD ({err}): did it stop or restart? Start 'musicrec mpd' again "
                       "once it runs.") from None
    except OSError as err:
        raise MpdError(f"lost the connection to MPD ({err.strerror or err}): did it stop or restart? Start "
                       "'musicrec mpd' again once it runs.") from None
    except mpd.CommandError as err:
        raise MpdError(f"MPD refused a command ({err}). If it needs a password, pass --password (or "
                       "MPD_HOST=password@host).") from None


def _top_up(client, keeper: QueueKeeper, *, say: Callable[[str], None]) -> None:
    mpd = load_mpd()
    for _ in range(3):  # again after MPD refused a song, with it left out
        status = client.status()
        if status.get("state") not in ("play", "pause") or "song" not in status:
            return
        queue = [item.get("file", "") for item in client.playlistinfo()]
        additions = keeper.plan(queue, int(status["song"]))
        refused = False
        for addition in additions:
            try:
                client.add(addition.uri)
            except mpd.CommandError as err:
                keeper.refused(addition, str(err))
                refused = True
            else:
                say(describe(addition))
        if not refused:
            return

