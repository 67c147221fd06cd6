"""Radio: when a song plays to its end, the nearest song not played yet follows, as the new anchor."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal

from musicrec_gui.core.explore import radio_next
from musicrec_gui.gui.preview import ANCHOR, Preview
from musicrec_gui.gui.recommender import Recommender
from musicrec_gui.gui.session import Session


MAX_FAILURES = 3


class Radio(QObject):
    """Keeps music going: each song that ends is followed by its nearest song not played yet.

    Parameters
    ----------
    session, recommender, preview
        What it follows and drives.
    exclusions : callable returning (bool, bool)
        The recommendation panel's "exclude same artist" and "exclude same album": the radio
        honours the same choices.
    queue : list of int, optional
        Set with :meth:`play_queue`: these songs play first, in order (a path between two songs).
    """

    changed = Signal(bool)  # on or off
    message = Signal(str)  # what it did, for the status bar

    def __init__(self, session: Session, recommender: Recommender, preview: Preview, *,
                 exclusions: Callable[[], tuple[bool, bool]] = lambda: (False, False), parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.recommender, self.preview = session, recommender, preview
        self.exclusions = exclusions
        self.enabled = False
        self.played: list[int] = []
        self.queue: list[int] = []
        self._folder = session.folder
        self._playing: int | None = None  # the song the radio last started
        self._failures = 0  # songs in a row that could not be played
        preview.player.ended.connect(self._on_ended)
        preview.player.failed.connect(self._on_failed)
        session.folderShown.connect(self._on_folder_shown)

    def _on_folder_shown(self, _tracks) -> None:
        """Another folder starts afresh; the same one shown again (a rescan, another analysis) does not."""
        if self.session.folder != self._folder:
            self._folder = self.session.folder
            self.played.clear()

    def set_enabled(self, enabled: bool) -> None:
        """Turn the radio on (the songs played so far start afresh) or off."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        self.played, self._failures, self._playing = [], 0, None
        if not enabled:
            self.queue = []
        playing = self.preview.track
        if enabled and playing is not None:
            self.played.append(playing.id)
        self.changed.emit(enabled)

    def start(self, track) -> None:
        """Play ``track`` from its start, then the nearest songs not played yet."""
        self.set_enabled(True)
        self._play(track)

    def play_queue(self, track_ids: list[int]) -> None:
        """Play these songs in order, then go on as a radio from the last one."""
        tracks = [t for t in (self.session.track(i) for i in track_ids) if t is not None]
        if not tracks:
            return
        self.set_enabled(True)
        self.queue = [t.id for t in tracks[1:]]
        self._play(tracks[0])

    def next_track(self, current_id: int):
        """The song that follows ``current_id``: the queue's next, else the nearest song not played (None if none)."""
        while self.queue:
            track = self.session.track(self.queue.pop(0))
            if track is not None:
                return track
        index = self.recommender.index
        if index is None or current_id not in index:
            return None
        artist, album = self.exclusions()
        found = radio_next(index, current_id=current_id, played=self.played,
                           exclude_same_artist=artist, exclude_same_album=album)
        return None if found is None else (self.session.track(found.track.id) or found.track)

    def _on_ended(self, key) -> None:
        if not self.enabled or not isinstance(key, tuple):
            return
        self._failures = 0
        current = key[1]
        if current not in self.played:
            self.played.append(current)
        following = self.next_track(current)
        if following is None:
            index = self.recommender.index
            if index is None or current not in index:
                self.message.emit("Radio stopped: the song that ended has no vector yet (the scan has not reached "
                                  "it, or the similar songs are still being gathered).")
            else:
                self.message.emit("Radio stopped: every song of this folder has been played, or the rest are "
                                  "excluded.")
            self.set_enabled(False)
            return
        self._play(following)

    def _on_failed(self, _reason: str) -> None:
        """A song the radio started cannot be played (a vanished or broken file): go on with the next.

        After ``MAX_FAILURES`` in a row the radio stops: a broken sound device would otherwise race
        through the whole folder.
        """
        asked = self.preview.last_asked
        if not self.enabled or self._playing is None or asked is None or asked.id != self._playing:
            return  # not a song the radio started (the user played another one meanwhile)
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            self.message.emit(f"Radio stopped: {MAX_FAILURES} songs in a row could not be played.")
            self.set_enabled(False)
            return
        failed, self._playing = self._playing, None
        following = self.next_track(failed)
        if following is None:
            self.set_enabled(False)
            return
        self._play(following)

    def _play(self, track) -> None:
        self._playing = track.id
        self.played.append(track.id)
        self.session.set_anchor(track)
        self.preview.play_at(track, 0.0, role=ANCHOR)
        self.message.emit(f"Radio: playing {track.title or track.display_path}")
