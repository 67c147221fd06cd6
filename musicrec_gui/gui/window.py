"""The main window: wires the engine thread, the models and the widgets together."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QHeaderView, QLabel, QLineEdit, QMainWindow, QMessageBox,
    QSplitter, QTableView, QTabWidget, QToolBar, QVBoxLayout, QWidget,
)

from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.encoder import bundled_encoder_path, read_encoder_config
from musicrec_gui.core.library import Library, Track, real_path
from musicrec_gui.core.tags import tags_text, top_tags
from musicrec_gui.core.names import display_text
from musicrec_gui.core.playlist import PLAYLIST_SUFFIXES, write_m3u8
from musicrec_gui.core.recommend import VectorIndex
from musicrec_gui.core.resources import resource_path
from musicrec_gui.gui.engine import Engine
from musicrec_gui.gui.models import TRACK_ROLE, SongFilterProxy, SongTableModel, describe
from musicrec_gui.gui.panels import FailurePanel, PlayerControls, RecommendationPanel, ScanProgressBar
from musicrec_gui.gui.player import PAUSED, PLAYING, BasePlayer, make_player
from musicrec_gui.gui.settings import GuiSettings, load_settings, save_settings
from musicrec_gui.gui.spectrogram import SpectrogramView, compute_spectrogram, display_window, thumbnail_image
from musicrec_gui.gui.tasks import BackgroundJobs


LARGE_LIBRARY_ROWS = 5000
FILTER_DEBOUNCE_MS = 150


def demo_folder() -> Path:
    return resource_path("demo")


def _elide(text: str, n: int) -> str:
    text = text.replace("<", "&lt;").replace(">", "&gt;") if len(text) <= n else \
        text[: n - 1].replace("<", "&lt;").replace(">", "&gt;") + "…"
    return text


def _under(path: str, folder: str) -> bool:
    """Library paths are real paths (links resolved), so the folder is compared as one too."""
    return path.startswith(os.path.join(real_path(folder), ""))


class MainWindow(QMainWindow):
    """musicrec's main window.

    Parameters
    ----------
    library : Library
        The cache; the window reads it, only the engine thread writes it.
    store : QSettings
        Where settings are remembered (tests pass an ini file of their own).
    encoder_path : str or None
        ``.keras`` encoder; the bundled one by default.
    player : BasePlayer or None
        Audio preview; ``make_player()`` by default.
    folder : str or None
        Open this folder at start (instead of the remembered one / the demo).
    """

    anchorChanged = Signal(object)  # Track or None
    recommendationsShown = Signal()
    spectrogramShown = Signal()
    scanIdle = Signal()

    def __init__(self, library: Library, store: QSettings, *, encoder_path: str | os.PathLike | None = None,
                 player: BasePlayer | None = None, folder: str | os.PathLike | None = None,
                 encoder_loader=None, autostart: bool = True):
        super().__init__()
        self.setWindowTitle("musicrec — songs that sound alike")
        self.setAcceptDrops(True)
        self.library = library
        self.store = store
        self.settings: GuiSettings = load_settings(store)
        self.encoder_path = str(encoder_path or bundled_encoder_path())
        self.jobs = BackgroundJobs(2, self)
        self.encoder_key = ""
        self.features = FeatureConfig()
        self.tag_names: tuple[str, ...] = ()
        try:
            config = read_encoder_config(self.encoder_path)
            # The spectrogram a person sees is always the dB log-mel display, whatever the encoder's
            # own front end (musicnn's log-compressed power has no fixed [0, 1] range to colour).
            self.encoder_key = config.key
            self.features = config.features if config.features.kind == "logmel-db" else FeatureConfig()
            self.tag_names = config.labels if config.has_tags else ()
        except Exception as err:  # noqa: BLE001 - shown; the cached list still shows
            self._encoder_config_error = str(err)
        else:
            self._encoder_config_error = ""
        self.folder = ""
        self.anchor: Track | None = None
        self.last_playlist_warnings: list[str] = []
        self._index: VectorIndex | None = None
        self._index_stale = True
        self._rec_token = 0
        self._spec_token = 0
        self._thumbnails: dict[int, object] = {}
        self._spectrogram_cache: dict[int, object] = {}
        self.player = player if player is not None else make_player(self)
        self.player.setParent(self)
        self._player_notice_shown = False

        self._build_ui()
        engine_kwargs = {"loader": encoder_loader} if encoder_loader is not None else {}
        self.engine = Engine(library, self.encoder_path, self, **engine_kwargs)
        self._connect()
        self._restore_layout()
        self.statusBar().showMessage("Loading encoder…")
        if self._encoder_config_error:
            self.statusBar().showMessage(f"Encoder unavailable: {self._encoder_config_error}")
        if not self.player.available:
            self._show_player_notice()
        if library.recovered_from is not None:
            QTimer.singleShot(0, lambda: QMessageBox.warning(
                self, "Library recovered", f"The library file was damaged; it was moved to "
                f"{library.recovered_from} and a new one was started."))
        if autostart:
            self._start(folder)

    # -- construction ------------------------------------------------------------
    def _build_ui(self) -> None:
        s = self.settings
        toolbar = QToolBar("Library")
        toolbar.setObjectName("library-toolbar")
        toolbar.setMovable(False)
        self.addToolBar(toolbar)
        self.open_action = QAction("Open music folder…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setToolTip("Choose the folder that holds your music (or drop a folder on the window)")
        self.rescan_action = QAction("Rescan", self)
        self.rescan_action.setShortcut(QKeySequence("F5"))
        self.rescan_action.setToolTip("Look for new, changed or removed songs in the folder")
        self.cancel_action = QAction("Cancel scan", self)
        self.cancel_action.setEnabled(False)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.rescan_action)
        toolbar.addAction(self.cancel_action)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Analyse: "))
        self.mode_box = QComboBox()
        self.mode_box.addItem("8 moments across the song", "spread")
        self.mode_box.addItem("30 s excerpt", "excerpt")
        self.mode_box.addItem("whole song (slower)", "full")
        self.mode_box.setCurrentIndex(max(0, self.mode_box.findData(s.analysis_mode)))
        self.mode_box.setToolTip("How much of each song is analysed; changing it rescans the folder")
        toolbar.addWidget(self.mode_box)
        toolbar.addSeparator()
        self.folder_label = QLabel("")
        self.folder_label.setStyleSheet("color: #555; padding-left: 6px;")
        toolbar.addWidget(self.folder_label)

        # Left: filter + song list.
        self.song_model = SongTableModel(self)
        self.song_proxy = SongFilterProxy(self)
        self.song_proxy.setSourceModel(self.song_model)
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter by title, artist, album or path…")
        self.filter_box.setClearButtonEnabled(True)
        # With a large library each filter pass takes ~0.2 s: wait for a pause in typing.
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DEBOUNCE_MS)
        self._filter_timer.timeout.connect(self._on_filter_timer_timeout)
        self.song_view = QTableView()
        self.song_view.setModel(self.song_proxy)
        self.song_view.setSortingEnabled(True)
        self.song_view.sortByColumn(SongTableModel.TITLE, Qt.SortOrder.AscendingOrder)
        self.song_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.song_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.song_view.setAlternatingRowColors(True)
        self.song_view.setWordWrap(False)
        self.song_view.verticalHeader().hide()
        self.song_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.song_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.song_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for column, width in enumerate((230, 130, 130, 64, 72)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(SongTableModel.TITLE, QHeaderView.ResizeMode.Stretch)
        self.song_count = QLabel("")
        self.song_count.setStyleSheet("color: #555;")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(4, 4, 4, 4)
        left_layout.addWidget(self.filter_box)
        left_layout.addWidget(self.song_view, 1)
        left_layout.addWidget(self.song_count)

        # Right: spectrogram + preview controls over recommendations.
        self.spectrogram = SpectrogramView(self.features)
        self.spectrogram.setMinimumHeight(220)
        self.player_controls = PlayerControls(s.volume)
        self.player_controls.set_available(self.player.available, self.player.unavailable_reason)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(4, 4, 4, 4)
        top_layout.addWidget(self.spectrogram, 1)
        top_layout.addWidget(self.player_controls)
        self.recommendations = RecommendationPanel(s.n_recommendations, s.exclude_same_artist,
                                                   s.exclude_same_album, self.player.available)
        self.side_splitter = QSplitter(Qt.Orientation.Vertical)
        self.side_splitter.setObjectName("side-splitter")
        self.side_splitter.addWidget(top)
        self.side_splitter.addWidget(self.recommendations)
        self.side_splitter.setStretchFactor(0, 3)
        self.side_splitter.setStretchFactor(1, 2)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("main-splitter")
        self.main_splitter.addWidget(left)
        self.main_splitter.addWidget(self.side_splitter)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 1)

        # Bottom: scan progress and failures.
        self.progress = ScanProgressBar()
        self.failures = FailurePanel()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.failures, "Failures (0)")
        self.bottom_tabs.setMaximumHeight(150)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.main_splitter, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.bottom_tabs)
        self.setCentralWidget(central)
        self.resize(1280, 820)

    def _connect(self) -> None:
        self.open_action.triggered.connect(self._on_open_triggered)
        self.rescan_action.triggered.connect(self._on_rescan_triggered)
        self.cancel_action.triggered.connect(self._on_cancel_requested)
        self.progress.cancelRequested.connect(self._on_cancel_requested)
        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.filter_box.textChanged.connect(self._on_filter_changed)
        self.song_view.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.song_proxy.rowsInserted.connect(self._on_song_count_changed)
        self.song_proxy.rowsRemoved.connect(self._on_song_count_changed)
        self.song_proxy.modelReset.connect(self._on_song_count_changed)
        self.song_proxy.layoutChanged.connect(self._on_song_count_changed)
        self.failures.countChanged.connect(self._on_failure_count_changed)
        self.failures.retryRequested.connect(self._on_retry_failed)
        self.recommendations.countChanged.connect(self._on_recommendation_options_changed)
        self.recommendations.exclusionsChanged.connect(self._on_recommendation_options_changed)
        self.recommendations.playRequested.connect(self._on_recommendation_play_requested)
        self.recommendations.saveRequested.connect(self._on_save_playlist_requested)
        self.player_controls.playPauseClicked.connect(self._on_anchor_play_clicked)
        self.player_controls.stopClicked.connect(self.player.stop)
        self.player_controls.volumeChanged.connect(self._on_volume_changed)
        self.player.set_volume(self.settings.volume / 100)
        self.player.stateChanged.connect(self._on_player_state_changed)
        self.player.positionChanged.connect(self._on_player_position_changed)
        self.player.failed.connect(self._on_player_failed)
        e = self.engine
        e.encoderReady.connect(self._on_encoder_ready)
        e.encoderFailed.connect(self._on_encoder_failed)
        e.listing.connect(self._on_listing)
        e.scanStarted.connect(self._on_scan_started)
        e.trackDone.connect(self._on_track_done)
        e.trackFailed.connect(self._on_track_failed)
        e.scanFinished.connect(self._on_scan_finished)
        e.scanError.connect(self._on_scan_error)

    def _restore_layout(self) -> None:
        s = self.settings
        if not s.geometry.isEmpty():
            self.restoreGeometry(s.geometry)
        if not s.main_splitter.isEmpty():
            self.main_splitter.restoreState(s.main_splitter)
        else:
            self.main_splitter.setSizes([560, 720])
        if not s.side_splitter.isEmpty():
            self.side_splitter.restoreState(s.side_splitter)
        else:
            self.side_splitter.setSizes([360, 300])

    # -- start-up -----------------------------------------------------------------
    def _start(self, folder) -> None:
        if folder:
            self.open_folder(str(folder))
        elif self.settings.last_folder and os.path.isdir(self.settings.last_folder):
            # Show the cached library at once; an incremental rescan picks up changes.
            self.open_folder(self.settings.last_folder)
        elif self.settings.last_folder:
            self.show_folder(self.settings.last_folder)
            self.statusBar().showMessage(f"The music folder {self.settings.last_folder} is not available.")
        else:
            self.open_folder(str(demo_folder()))

    @property
    def analysis(self) -> AnalysisSettings:
        return AnalysisSettings(mode=self.mode_box.currentData())

    # -- library ------------------------------------------------------------------
    def show_folder(self, folder: str) -> None:
        """Show what the cache knows about ``folder`` (no analysis)."""
        self.folder = real_path(folder)
        # Status and failures as seen by the encoder and analysis in use: a failure under another
        # one says nothing of this one.
        keys = {"encoder_key": self.encoder_key, "analysis_key": self.analysis.key} if self.encoder_key else {}
        tracks = self.library.tracks(under=self.folder, **keys)
        self.song_model.set_tracks(tracks)
        self._resort()
        self.failures.set_failures((t.display_path, t.error) for t in tracks if t.status == "failed")
        self._index_stale = True
        shown = "the demo library" if Path(self.folder) == demo_folder().resolve() or \
            self.folder == str(demo_folder()) else self.folder
        self.folder_label.setText(f"Folder: {shown}")
        self.folder_label.setToolTip(self.folder)
        self.setWindowTitle(f"musicrec — {os.path.basename(self.folder) or self.folder}")

    def open_folder(self, folder: str) -> None:
        """Show ``folder`` from the cache, remember it, and scan it for changes."""
        if not os.path.isdir(folder):
            QMessageBox.warning(self, "Not a folder", f"{folder} is not a folder that can be opened.")
            return
        self.player.stop()
        self.select_track(None)
        self.show_folder(folder)
        self.settings.last_folder = self.folder
        self.start_scan()

    def start_scan(self, *, retry_failed: bool = False) -> None:
        if not self.folder:
            return
        if not self.encoder_key:
            self.progress.set_idle(f"Cannot analyse: {self._encoder_config_error}")
            return
        if retry_failed:
            self.failures.set_failures(())
        self.engine.start_scan(self.folder, self.analysis, retry_failed=retry_failed)
        self.cancel_action.setEnabled(True)
        self.progress.set_waiting("Waiting for the encoder to load…" if not self.engine.encoder_loaded
                                  else "Looking for songs…")

    def _on_open_triggered(self) -> None:
        start = self.folder or self.settings.last_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open music folder", start)
        if folder:
            self.open_folder(folder)

    def _on_rescan_triggered(self) -> None:
        self.start_scan()

    def _on_retry_failed(self) -> None:
        self.start_scan(retry_failed=True)

    def _on_cancel_requested(self) -> None:
        self.engine.cancel_scan()
        self.cancel_action.setEnabled(False)

    def _on_mode_changed(self, _index: int) -> None:
        self.settings.analysis_mode = self.mode_box.currentData()
        self._index_stale = True
        self._spectrogram_cache.clear()
        self._thumbnails.clear()
        self.start_scan()
        self._refresh_anchor()

    # drag and drop of a folder
    def dragEnterEvent(self, event) -> None:
        if self._dropped_folder(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        folder = self._dropped_folder(event.mimeData())
        if folder:
            event.acceptProposedAction()
            self.open_folder(folder)

    @staticmethod
    def _dropped_folder(mime) -> str | None:
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            path = url.toLocalFile()
            if path and os.path.isdir(path):
                return path
        return None

    # -- engine events ---------------------------------------------------------------
    def _on_encoder_ready(self, name: str) -> None:
        self.statusBar().showMessage(f"Encoder ready: {name}", 8000)
        if self.engine.scanning:
            self.progress.set_waiting("Looking for songs…")

    def _on_encoder_failed(self, message: str) -> None:
        self.statusBar().showMessage(message)
        QMessageBox.warning(self, "Encoder unavailable", message + "\n\nThe cached library can still be browsed.")

    def _on_listing(self, found: int) -> None:
        self.progress.set_waiting(f"Looking for songs… {found} found")

    def _on_scan_started(self, event) -> None:
        self.progress.start(event.total, event.to_analyse, event.cached)
        if event.missing:
            self.statusBar().showMessage(
                f"{event.missing} known song{'s' if event.missing != 1 else ''} not found: their folder is gone or "
                "empty (an unplugged drive?). They are kept; plug the drive in and rescan.")
        if event.pruned or event.to_analyse:
            # plan_scan added new files as pending and forgot removed ones: show that now.
            self.show_folder(self.folder)
            self._reselect_anchor()

    def _on_track_done(self, event) -> None:
        self.song_model.upsert(event.track)
        self._index_stale = True
        self.progress.advance(event.completed, event.to_analyse, failed=False)

    def _on_track_failed(self, event) -> None:
        self.failures.add(display_text(event.path), event.reason)
        track = self.library.track_by_path(event.path)
        if track is not None and _under(track.path, self.folder):
            self.song_model.upsert(track)
        self.progress.advance(event.completed, event.to_analyse, failed=True)

    def _on_scan_finished(self, event) -> None:
        self.cancel_action.setEnabled(False)
        self.progress.finish(event.analysed, event.failed, event.cached, event.cancelled, event.seconds)
        if event.error:  # a full disk, a lock held too long, a broken encoder: finished songs are kept
            self.progress.set_idle(f"The scan stopped: {event.error}")
            self.statusBar().showMessage(f"The scan stopped: {event.error}")
        if event.analysed:
            self._resort()  # titles and artists came from the tags
        self._index_stale = True
        if self.anchor is None:
            self._select_first_analysed()
        elif event.analysed:
            self._refresh_recommendations()
        self.scanIdle.emit()

    def _resort(self) -> None:
        header = self.song_view.horizontalHeader()
        self.song_proxy.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())

    def _on_scan_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)

    # -- song list ---------------------------------------------------------------------
    def _on_filter_changed(self, text: str) -> None:
        if self.song_model.rowCount() > LARGE_LIBRARY_ROWS:
            self._filter_timer.start()
        else:
            self.song_proxy.set_filter_text(text)

    def _on_filter_timer_timeout(self) -> None:
        self.song_proxy.set_filter_text(self.filter_box.text())

    def _on_song_count_changed(self, *args) -> None:
        total = self.song_model.rowCount()
        shown = self.song_proxy.rowCount()
        self.song_count.setText(f"{total} songs" if shown == total else f"{shown} of {total} songs shown")

    def _on_failure_count_changed(self, n: int) -> None:
        self.bottom_tabs.setTabText(0, f"Failures ({n})")

    def _on_current_row_changed(self, current, _previous) -> None:
        track = current.data(TRACK_ROLE) if current.isValid() else None
        self._set_anchor(track)

    def select_track(self, track_id: int | None) -> bool:
        """Select a song in the list (``None`` clears the selection)."""
        if track_id is None:
            self.song_view.selectionModel().clearSelection()
            self.song_view.selectionModel().setCurrentIndex(self.song_proxy.index(-1, -1),
                                                             QItemSelectionModel.SelectionFlag.Clear)
            self._set_anchor(None)
            return True
        row = self.song_model.row_of(track_id)
        if row is None:
            return False
        index = self.song_proxy.mapFromSource(self.song_model.index(row, 0))
        if not index.isValid():
            return False
        self.song_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.song_view.scrollTo(index)
        return True

    def _select_first_analysed(self) -> None:
        for row in range(self.song_proxy.rowCount()):
            track = self.song_proxy.index(row, 0).data(TRACK_ROLE)
            if track.status == "done":
                self.select_track(track.id)
                return

    def _reselect_anchor(self) -> None:
        if self.anchor is not None and not self.select_track(self.anchor.id):
            self._set_anchor(None)

    def _set_anchor(self, track: Track | None) -> None:
        if track is not None and self.anchor is not None and track == self.anchor:
            return
        self.anchor = track
        self.anchorChanged.emit(track)
        self._refresh_anchor()

    def _refresh_anchor(self) -> None:
        self._show_spectrogram()
        self._refresh_recommendations()
        self._update_player_controls()

    # -- spectrogram ------------------------------------------------------------------
    def _show_spectrogram(self) -> None:
        track = self.anchor
        self._spec_token += 1
        token = self._spec_token
        if track is None:
            self.spectrogram.title.setText("")
            self.spectrogram.show_message("Select a song to see its spectrogram.")
            return
        title = f"<b>{_elide(describe(track), 70)}</b>" + (f" — {_elide(track.album, 40)}" if track.album else "")
        tags = self.song_tags(track)
        if tags:
            title += f"<br><small>tags: {_elide(tags_text(tags), 90)}</small>"
        cached = self._spectrogram_cache.get(track.id)
        if cached is not None:
            self.spectrogram.set_data(cached, title)
            self.spectrogram.set_playhead(self.player.position() if self._anchor_is_playing() else None)
            self.spectrogram_ready = True
            self.spectrogram.title.setText(title)
            self.spectrogramShown.emit()
            return
        self.spectrogram_ready = False
        self.spectrogram.show_loading(title)
        settings, features = self.analysis, self.features

        def work():
            return compute_spectrogram(track.path, settings=settings, config=features, duration=track.duration)

        def done(data):
            if token != self._spec_token:
                return
            self._spectrogram_cache[track.id] = data
            if len(self._spectrogram_cache) > 32:
                self._spectrogram_cache.pop(next(iter(self._spectrogram_cache)))
            self.spectrogram.set_data(data, title)
            self.spectrogram_ready = True
            self.spectrogramShown.emit()

        def failed(err):
            if token == self._spec_token:
                self.spectrogram.show_message(f"Cannot show this song: {err}")
                self.spectrogram_ready = True
                self.spectrogramShown.emit()

        self.jobs.submit(work, done, failed)

    spectrogram_ready = False

    def song_tags(self, track: Track) -> list[tuple[str, float]]:
        """A song's most probable tags under the encoder and analysis in use (empty without a tag head)."""
        if not self.tag_names or track.status != "done":
            return []
        probabilities = self.library.tag_probabilities(track.id, encoder_key=self.encoder_key,
                                                       analysis_key=self.analysis.key)
        return top_tags(probabilities, self.tag_names, count=4, minimum=0.05)

    # -- recommendations --------------------------------------------------------------
    def _on_recommendation_options_changed(self, *args) -> None:
        self.settings.n_recommendations = self.recommendations.count
        self.settings.exclude_same_artist = self.recommendations.exclude_artist.isChecked()
        self.settings.exclude_same_album = self.recommendations.exclude_album.isChecked()
        self._refresh_recommendations()

    def _refresh_recommendations(self) -> None:
        self._rec_token += 1
        token = self._rec_token
        track = self.anchor
        panel = self.recommendations
        panel.set_anchor(track)
        if track is None:
            panel.show_message("Select a song in the list to see the songs that sound like it.")
            return
        if track.status == "failed":
            panel.show_message(f"This song could not be analysed: {track.error}")
            return
        if track.status != "done":
            panel.show_message("This song has not been analysed yet; it will be when the scan reaches it.")
            return
        if self._index is None or self._index_stale:
            panel.show_message("Finding similar songs…")
            library, folder = self.library, self.folder
            encoder_key, analysis_key = self.encoder_key, self.analysis.key
            self._index_stale = False

            def build():
                ids, vectors = library.vectors(encoder_key=encoder_key, analysis_key=analysis_key)
                by_id = {t.id: t for t in library.tracks(under=folder)}
                keep = [i for i, tid in enumerate(ids) if int(tid) in by_id]
                tracks = [by_id[int(ids[i])] for i in keep]
                return VectorIndex(tracks, vectors[keep] if keep else np.zeros((0, 1), np.float32))

            def built(index):
                self._index = index
                if token == self._rec_token:
                    self._query_recommendations()

            def failed(err):
                self._index_stale = True
                if token == self._rec_token:
                    panel.show_message(f"Cannot compute recommendations: {err}")

            self.jobs.submit(build, built, failed)
        else:
            self._query_recommendations()

    def _query_recommendations(self) -> None:
        track, panel = self.anchor, self.recommendations
        if track is None or self._index is None:
            return
        if track.id not in self._index:
            panel.show_message("This song has no vector for the current encoder and analysis mode yet; "
                               "it will have one when the scan reaches it.")
            self.recommendationsShown.emit()
            return
        recs = self._index.similar(track.id, k=panel.count,
                                   exclude_same_artist=panel.exclude_artist.isChecked(),
                                   exclude_same_album=panel.exclude_album.isChecked())
        panel.set_recommendations(recs)
        panel.set_playing(self.player.key[1] if self._rec_is_playing() else None)
        for row in panel.rows:
            self._load_thumbnail(row)
        self.recommendationsShown.emit()

    def _load_thumbnail(self, row) -> None:
        track = row.track
        cached = self._thumbnails.get(track.id)
        if cached is not None:
            from PySide6.QtGui import QPixmap

            row.set_thumbnail(QPixmap.fromImage(cached))
            return
        features = self.features

        def work():
            data = compute_spectrogram(track.path, settings=AnalysisSettings("excerpt", excerpt_seconds=12.0),
                                       config=features, duration=track.duration)
            return thumbnail_image(data.mel)

        def done(image):
            from PySide6.QtGui import QPixmap

            self._thumbnails[track.id] = image
            try:
                row.set_thumbnail(QPixmap.fromImage(image))
            except RuntimeError:  # the row was replaced meanwhile
                pass

        self.jobs.submit(work, done, lambda err: None)

    def thumbnails_ready(self) -> bool:
        return all(r.thumbnail.pixmap() is not None and not r.thumbnail.pixmap().isNull()
                   for r in self.recommendations.rows)

    def _on_save_playlist_requested(self) -> None:
        anchor = self.anchor
        if anchor is None:
            return
        default = os.path.join(self.settings.last_folder or str(Path.home()),
                               f"Songs like {anchor.title}.m3u8".replace(os.sep, "_"))
        path, _ = QFileDialog.getSaveFileName(self, "Save playlist", default, "M3U8 playlist (*.m3u8 *.m3u)")
        if not path:
            return
        # The file dialog has already asked "replace?" for an existing file. That answer
        # stands in for the command line's --force only for a file that is a playlist by
        # name (.m3u8/.m3u), and only if it is the very file the dialog asked about: any
        # other existing file musicrec did not write is still refused.
        confirmed = os.path.lexists(path) and Path(path).suffix.lower() in PLAYLIST_SUFFIXES
        try:
            self.save_playlist(path, force=confirmed)
        except (OSError, ValueError) as err:
            QMessageBox.warning(self, "Playlist not saved", str(err))
            return
        if self.last_playlist_warnings:
            QMessageBox.information(self, "Some songs left out", "\n\n".join(self.last_playlist_warnings))

    def save_playlist(self, path: str, *, force: bool = False) -> Path:
        """Write the anchor and its recommendations as an M3U8 playlist.

        A name without an extension gets ``.m3u8``. The rules of
        :func:`musicrec_gui.core.playlist.check_playlist_path` apply: any other extension,
        a folder or special file, or an existing file musicrec did not write (unless
        ``force``) is refused with a ValueError. Songs that could not be named in the
        playlist are described in ``last_playlist_warnings``.
        """
        output = Path(path)
        if not output.suffix:
            output = output.with_name(output.name + ".m3u8")
        anchor = self.anchor
        if anchor is None:
            raise ValueError("Select a song first.")
        tracks = [anchor] + [r.track for r in self.recommendations.recommendations]
        written = write_m3u8(output, tracks, title=f"Songs like {describe(anchor)}",
                             force=force and output == Path(path))
        self.last_playlist_warnings = written.warnings
        skipped = f" ({len(written.skipped)} left out)" if written.skipped else ""
        self.statusBar().showMessage(f"Saved {written.written} songs to {written.path}{skipped}", 8000)
        return written.path

    # -- preview -------------------------------------------------------------------------
    def start_point(self, track: Track) -> float:
        return display_window(track.duration, self.analysis)[0]

    def _anchor_is_playing(self) -> bool:
        return self.anchor is not None and self.player.key == ("anchor", self.anchor.id)

    def _rec_is_playing(self) -> bool:
        return isinstance(self.player.key, tuple) and self.player.key[0] == "rec"

    def _on_anchor_play_clicked(self) -> None:
        if self.anchor is None:
            return
        self.player.toggle(("anchor", self.anchor.id), self.anchor.path, self.start_point(self.anchor))

    def _on_recommendation_play_requested(self, track: Track) -> None:
        self.player.toggle(("rec", track.id), track.path, self.start_point(track))

    def _on_volume_changed(self, value: int) -> None:
        self.settings.volume = value
        self.player.set_volume(value / 100)

    def _on_player_state_changed(self, state: str, key) -> None:
        self._update_player_controls()
        if not self._anchor_is_playing() or state not in (PLAYING, PAUSED):
            if not self._anchor_is_playing():
                self.spectrogram.set_playhead(None)

    def _update_player_controls(self) -> None:
        state, key = self.player.state, self.player.key
        anchor_key = ("anchor", self.anchor.id) if self.anchor is not None else None
        text = ""
        if key is not None and state in (PLAYING, PAUSED, "loading"):
            track = self.anchor if key == anchor_key else next(
                (r.track for r in self.recommendations.recommendations if r.track.id == key[1]), None)
            verb = {"playing": "Playing", "paused": "Paused", "loading": "Loading"}[state]
            text = f"{verb}: {describe(track)}" if track is not None else verb
        self.player_controls.set_state(key == anchor_key and state == PLAYING,
                                       key == anchor_key and state == PAUSED, text)
        if self.player.available:  # else the controls stay disabled, saying why
            # A file that could not be decoded cannot be previewed either.
            failed = self.anchor is not None and self.anchor.status == "failed"
            self.player_controls.play_button.setEnabled(self.anchor is not None and not failed)
            self.player_controls.play_button.setToolTip(f"Cannot play: {self.anchor.error}" if failed else "")
        rec_id = key[1] if isinstance(key, tuple) and key[0] == "rec" and state == PLAYING else None
        self.recommendations.set_playing(rec_id)

    def _on_player_position_changed(self, seconds: float) -> None:
        if self._anchor_is_playing():
            self.spectrogram.set_playhead(seconds)

    def _on_player_failed(self, message: str) -> None:
        if not self.player.available:
            self._show_player_notice()
        else:
            self.statusBar().showMessage(message, 10000)

    def _show_player_notice(self) -> None:
        # Said once, and kept in view: a passing status message would be overwritten by the next one.
        if not self._player_notice_shown:
            self._player_notice_shown = True
            self.audio_notice = QLabel(self.player.unavailable_reason)
            self.audio_notice.setStyleSheet("color: #a33;")
            self.audio_notice.setToolTip(self.player.unavailable_reason)
            self.statusBar().addPermanentWidget(self.audio_notice)

    # -- shutdown ---------------------------------------------------------------------------
    def save_settings(self) -> None:
        s = self.settings
        s.geometry = self.saveGeometry()
        s.main_splitter = self.main_splitter.saveState()
        s.side_splitter = self.side_splitter.saveState()
        s.analysis_mode = self.mode_box.currentData()
        s.n_recommendations = self.recommendations.count
        s.exclude_same_artist = self.recommendations.exclude_artist.isChecked()
        s.exclude_same_album = self.recommendations.exclude_album.isChecked()
        s.volume = self.player_controls.volume.value()
        save_settings(self.store, s)

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.player.close()
        self.jobs.shutdown()
        self.engine.shutdown()
        super().closeEvent(event)
