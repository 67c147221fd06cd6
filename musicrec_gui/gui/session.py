"""What the window's parts share: the library, the encoder in use, the open folder, the analysis and the anchor.

Panels take a :class:`Session` (and whatever else they show) and connect themselves to its
signals; none of them talks to another panel, and the window only lays them out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.encoder import EncoderError, read_encoder_config
from musicrec_gui.core.explore import patch_spans
from musicrec_gui.core.library import Library, Track, real_path
from musicrec_gui.core.resources import resource_path
from musicrec_gui.core.songtable import SongTable
from musicrec_gui.core.spectrogram import display_window
from musicrec_gui.core.tags import top_tags


def demo_folder() -> Path:
    return resource_path("demo")


class Session(QObject):
    """The app's shared state.

    Parameters
    ----------
    library : Library
        Read here; only the engine thread writes it.
    encoder_path : str
        The ``.keras`` encoder in use (its JSON is read now; the model loads in the engine).
    analysis_mode : str
        One of ``core.config.ANALYSIS_MODES``.
    """

    folderShown = Signal(object)  # the folder's tracks (a sequence), as the library has them now
    # A large folder is read in chunks: the first is shown at once (folderLoading), the others follow
    # (tracksLoaded) between events, and folderShown comes with all of them at the end.
    folderLoading = Signal(list)
    tracksLoaded = Signal(list)
    LOAD_CHUNK = 20_000
    trackChanged = Signal(object)  # a Track whose status or tags changed (analysed, failed)
    analysisChanged = Signal(object)  # AnalysisSettings
    anchorChanged = Signal(object)  # Track or None
    historyChanged = Signal()  # Back/Forward became possible or impossible
    passageChanged = Signal(object)  # (start, end) seconds of the anchor, or None for the whole song
    filterRequested = Signal(str)  # text for the song list's filter (a tag chip was clicked)

    def __init__(self, library: Library, encoder_path: str, *, analysis_mode: str = "spread",
                 parent: QObject | None = None):
        super().__init__(parent)
        self.library = library
        self.encoder_path = encoder_path
        self.encoder_key = ""
        self.encoder_error = ""
        # The spectrogram a person sees is always the dB log-mel display, whatever the encoder's
        # own front end (musicnn's log-compressed power has no fixed [0, 1] range to colour).
        self.display_features = FeatureConfig()
        self.tag_names: tuple[str, ...] = ()
        self.encoder_features = FeatureConfig()  # where the encoder's patches lie in a song
        try:
            config = read_encoder_config(encoder_path)
        except (EncoderError, OSError, ValueError) as err:
            self.encoder_error = str(err)
        else:
            self.encoder_key = config.key
            self.encoder_features = config.features
            if config.features.kind == "logmel-db":
                self.display_features = config.features
            self.tag_names = config.labels if config.has_tags else ()
        self.analysis = AnalysisSettings(mode=analysis_mode)
        self.folder = ""
        self.anchor: Track | None = None
        self.passage: tuple[float, float] | None = None  # part of the anchor the user selected
        # Songs picked as the anchor, like a browser's history: Back and Forward walk it.
        self._history: list[int] = []
        self._position = -1
        self.songs = SongTable()  # the open folder's songs, as last shown
        self._loading = None  # the chunks of a large folder still being read
        self.completing_chunks = False  # folderShown ends a load in chunks: its songs are listed already

    # -- the folder -------------------------------------------------------------
    @property
    def is_demo(self) -> bool:
        return bool(self.folder) and Path(self.folder) == demo_folder().resolve()

    def show_folder(self, folder: str | os.PathLike) -> list[Track]:
        """Show what the library knows about ``folder`` (no analysis); every panel follows."""
        if real_path(folder) != self.folder:
            self._history, self._position = [], -1
            self.historyChanged.emit()
        self.folder = real_path(folder)
        self.stop_loading()
        chunks = self._track_chunks()
        first = next(chunks, [])
        self.songs = SongTable(first)
        if len(first) < self.LOAD_CHUNK:
            chunks.close()
            self._shown(first)
            return first
        # A large folder: its first songs now, the others in chunks between events.
        self._loading = chunks
        self.folderLoading.emit(first)
        QTimer.singleShot(0, self._load_more)
        return first

    @property
    def loading(self) -> bool:
        """Whether the open folder's songs are still being read (``folderShown`` comes at the end)."""
        return self._loading is not None

    def stop_loading(self) -> None:
        if self._loading is not None:
            self._loading.close()
            self._loading = None

    def _load_more(self) -> None:
        chunks = self._loading
        if chunks is None:
            return
        chunk = next(chunks, None)
        if chunk is None:
            self._loading = None
            self.songs.trim()
            self.completing_chunks = True
            try:
                self._shown(self.songs.tracks())
            finally:
                self.completing_chunks = False
            return
        chunk = self.songs.extend(chunk)  # a song analysed meanwhile is newer: kept
        self.tracksLoaded.emit(chunk)
        QTimer.singleShot(0, self._load_more)

    def _shown(self, tracks: Sequence[Track]) -> None:
        self.folderShown.emit(tracks)
        if self.anchor is not None:
            self.set_anchor(self.songs.track_by_id(self.anchor.id))

    def _track_chunks(self):
        if self.folder:
            keys = {"encoder_key": self.encoder_key, "analysis_key": self.analysis.key} if self.encoder_key else {}
            yield from self.library.iter_tracks(under=self.folder, chunk=self.LOAD_CHUNK, **keys)

    def tracks(self) -> list[Track]:
        """The open folder's songs, with status and failures as the encoder and analysis in use see them."""
        if not self.folder:
            return []
        keys = {"encoder_key": self.encoder_key, "analysis_key": self.analysis.key} if self.encoder_key else {}
        return self.library.tracks(under=self.folder, **keys)

    def set_analysis(self, mode: str) -> None:
        if mode == self.analysis.mode:
            return
        self.analysis = AnalysisSettings(mode=mode)
        self.analysisChanged.emit(self.analysis)
        if self.folder:
            self.show_folder(self.folder)

    def update_track(self, track: Track) -> None:
        """A song of the open folder was analysed (or failed): its row and, if it is the anchor, its panels."""
        self.songs.upsert(track)
        self.trackChanged.emit(track)
        if self.anchor is not None and track.id == self.anchor.id:
            self.anchor = track
            self.anchorChanged.emit(track)

    # -- the anchor -------------------------------------------------------------
    def set_anchor(self, track: Track | None, *, remember: bool = True) -> None:
        """The song whose neighbours are shown; ``None`` for none. Setting the same song again does nothing.

        A new song is added to the history after the current position (dropping what was ahead of
        it, as a browser does), unless ``remember`` is False (Back and Forward themselves).
        """
        if track == self.anchor:
            return
        if remember and track is not None and (self.anchor is None or track.id != self.anchor.id):
            del self._history[self._position + 1:]
            self._history.append(track.id)
            self._position = len(self._history) - 1
            self.historyChanged.emit()
        if self.passage is not None and (track is None or self.anchor is None or track.id != self.anchor.id):
            self.passage = None
            self.passageChanged.emit(None)
        self.anchor = track
        self.anchorChanged.emit(track)

    def set_passage(self, passage: tuple[float, float] | None) -> None:
        """Ask for songs like part of the anchor (start, end in seconds), or like all of it (None)."""
        if passage is not None:
            passage = (float(min(passage)), float(max(passage)))
        if passage == self.passage or (passage is not None and self.anchor is None):
            return
        self.passage = passage
        self.passageChanged.emit(passage)

    def can_go(self, step: int) -> bool:
        """Whether Back (``step=-1``) or Forward (``step=1``) leads to a song."""
        return 0 <= self._position + step < len(self._history)

    def go(self, step: int) -> bool:
        """Make the previous (``-1``) or next (``1``) song of the history the anchor; False if there is none.

        Songs that left the open folder are skipped.
        """
        position = self._position + step
        while 0 <= position < len(self._history):
            track = self.songs.track_by_id(self._history[position])
            if track is not None:
                self._position = position
                self.set_anchor(track, remember=False)
                self.historyChanged.emit()
                return True
            position += step
        return False

    def track(self, track_id: int) -> Track | None:
        """A song of the open folder by id (None if it is not there)."""
        return self.songs.track_by_id(track_id)

    def song_tags(self, track: Track) -> list[tuple[str, float]]:
        """A song's most probable tags under the encoder and analysis in use (empty without a tag head)."""
        if not self.tag_names or track.status != "done":
            return []
        probabilities = self.library.tag_probabilities(track.id, encoder_key=self.encoder_key,
                                                       analysis_key=self.analysis.key)
        return top_tags(probabilities, self.tag_names, count=4, minimum=0.05)

    def song_moments(self, track: Track, *, settings: AnalysisSettings | None = None
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """A song's analysed moments under the encoder in use and ``settings`` (default: the analysis in
        use): their vectors and where they lie in the song; None if the library holds none.

        Returns
        -------
        (np.ndarray [shape=(n, d)], np.ndarray [shape=(n, 2)]) or None
            Raw moment vectors, and their (start, end) in seconds.
        """
        settings = self.analysis if settings is None else settings
        if not self.encoder_key:
            return None
        stored = self.library.slice_vectors(track.id, encoder_key=self.encoder_key, analysis_key=settings.key)
        if stored is None:
            return None
        spans = patch_spans(n_patches=len(stored[0]), duration=track.duration, offset_seconds=stored[1],
                            settings=settings, features=self.encoder_features)
        return stored[0], spans

    def start_point(self, track: Track) -> float:
        """Where a preview of ``track`` starts: the part of it that is shown (seconds)."""
        return display_window(track.duration, self.analysis)[0]
