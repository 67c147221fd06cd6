"""The main window: makes the app's parts, lays their panels out, and remembers the layout.

Every panel connects itself to what it shows (the session, the engine, the preview); the
window only builds them, places them, and owns the toolbar and the status bar.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from musicrec_gui.core.encoder import bundled_encoder_path
from musicrec_gui.core.library import Library
from musicrec_gui.gui.actions import SongActions
from musicrec_gui.gui.commands import Commands
from musicrec_gui.gui.engine import Engine, EncoderFailed
from musicrec_gui.gui.explorer import Explorer
from musicrec_gui.gui.map_panel import MapPanel
from musicrec_gui.gui.panels import FailurePanel, ScanProgressBar
from musicrec_gui.gui.player import BasePlayer, make_player
from musicrec_gui.gui.preview import PlayerControls, Preview
from musicrec_gui.gui.recommendations import RecommendationPanel
from musicrec_gui.gui.recommender import Recommender
from musicrec_gui.gui.scanning import ScanController
from musicrec_gui.gui.session import Session, demo_folder
from musicrec_gui.gui.preferences import Preferences, load_preferences
from musicrec_gui.gui.preferences import save_preferences as store_preferences
from musicrec_gui.gui.songlist import SongListPanel
from musicrec_gui.gui.spectrogram_panel import SpectrogramPanel
from musicrec_gui.gui.tasks import BackgroundJobs
from musicrec_gui.integrations.desktop import icon_path


class MainWindow(QMainWindow):
    """musicrec's main window.

    Parameters
    ----------
    library : Library
        The cache; the window reads it, only the engine thread writes it.
    store : QSettings
        Where preferences are remembered (tests pass an ini file of their own).
    encoder_path : str or None
        ``.keras`` encoder; the bundled one by default.
    player : BasePlayer or None
        Audio preview; ``make_player()`` by default.
    folder : str or None
        Open this folder at start (instead of the remembered one / the demo).
    """

    def __init__(self, library: Library, store: QSettings, *, encoder_path: str | os.PathLike | None = None,
                 player: BasePlayer | None = None, folder: str | os.PathLike | None = None,
                 encoder_loader=None, autostart: bool = True):
        super().__init__()
        self.setWindowTitle("musicrec — songs that sound alike")
        self.setWindowIcon(QIcon(str(icon_path())))  # the desktop entry's icon (resources/desktop/musicrec.svg)
        self.setAcceptDrops(True)
        self.store = store
        self.preferences: Preferences = load_preferences(store)
        s = self.preferences
        self.session = Session(library, str(encoder_path or bundled_encoder_path()), analysis_mode=s.analysis_mode,
                               parent=self)
        self.jobs = BackgroundJobs(2, self)
        self.player = player if player is not None else make_player(self)
        self.player.setParent(self)
        self.preview = Preview(self.session, self.player, self)
        engine_kwargs = {"loader": encoder_loader} if encoder_loader is not None else {}
        self.engine = Engine(library, self.session.encoder_path, self, **engine_kwargs)
        self.recommender = Recommender(self.session, self.engine, self.jobs, self)
        self.scans = ScanController(self.session, self.engine, self)
        self.song_actions = SongActions(self.session, self.preview, self, scans=self.scans)

        self.songs = SongListPanel(self.session, self.engine, self.song_actions, jobs=self.jobs)
        self.map = MapPanel(self.session, self.recommender, self.jobs, self.song_actions, engine=self.engine)
        self.spectrogram_panel = SpectrogramPanel(self.session, self.preview, self.jobs)
        self.player_controls = PlayerControls(self.preview, volume=s.volume)
        self.recommendations = RecommendationPanel(
            self.session, self.recommender, self.preview, self.jobs, count=s.n_recommendations,
            exclude_artist=s.exclude_same_artist, exclude_album=s.exclude_same_album, actions=self.song_actions)
        self.explorer = Explorer(self.session, self.recommender, self.preview, self.jobs, self.song_actions,
                                 self.recommendations, self)
        self.player_controls.attach_radio(self.explorer.radio)
        self.progress = ScanProgressBar(self.scans)
        self.failures = FailurePanel(self.scans)
        self.commands = Commands(self, self.scans, self.song_actions)
        self.mode_box = self.commands.mode_box
        self._lay_out()
        self._connect()
        self._restore_layout()
        self._player_notice_shown = False
        if self.session.encoder_error:
            self.statusBar().showMessage(f"Encoder unavailable: {self.session.encoder_error}")
        if not self.player.available:
            self._show_player_notice()
        if library.recovered_from is not None:
            QTimer.singleShot(0, lambda: QMessageBox.warning(
                self, "Library recovered", f"The library file was damaged; it was moved to "
                f"{library.recovered_from} and a new one was started."))
        if autostart:
            self._start(folder)

    # -- construction ------------------------------------------------------------
    def _lay_out(self) -> None:
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(4, 4, 4, 4)
        top_layout.addWidget(self.spectrogram_panel, 1)
        top_layout.addWidget(self.player_controls)
        self.side_splitter = QSplitter(Qt.Orientation.Vertical)
        self.side_splitter.setObjectName("side-splitter")
        self.side_splitter.addWidget(top)
        self.side_splitter.addWidget(self.recommendations)
        self.side_splitter.setStretchFactor(0, 3)
        self.side_splitter.setStretchFactor(1, 2)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("main-splitter")
        # The song list and the map share the left column: both pick the anchor, and the map
        # needs the room (side by side neither would fit a 1024-px screen).
        self.left_tabs = QTabWidget()
        self.left_tabs.setObjectName("left-tabs")
        self.left_tabs.setDocumentMode(True)
        self.left_tabs.addTab(self.songs, "Songs")
        self.left_tabs.addTab(self.map, "Map")
        self.left_tabs.setTabToolTip(0, "The songs of the open folder: pick one to see the songs that sound like it")
        self.left_tabs.setTabToolTip(1, "Every analysed song on a map: similar songs lie close together")
        self.main_splitter.addWidget(self.left_tabs)
        self.main_splitter.addWidget(self.side_splitter)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 1)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.failures, "Failures (0)")
        self.bottom_tabs.setTabToolTip(0, "Files of this folder that could not be analysed, and why")
        self.bottom_tabs.setMinimumHeight(self.bottom_tabs.tabBar().sizeHint().height() + 4)
        self.failures.view.setMinimumHeight(24)
        # The failures share a splitter with the rest: a handle to drag, and room given back when small.
        self.outer_splitter = QSplitter(Qt.Orientation.Vertical)
        self.outer_splitter.setObjectName("outer-splitter")
        self.outer_splitter.addWidget(self.main_splitter)
        self.outer_splitter.addWidget(self.bottom_tabs)
        self.outer_splitter.setStretchFactor(0, 1)
        self.outer_splitter.setStretchFactor(1, 0)
        self.outer_splitter.setCollapsible(0, False)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.outer_splitter, 1)
        layout.addWidget(self.progress)
        self.setCentralWidget(central)
        self.setMinimumSize(640, 420)

    def _connect(self) -> None:
        self.failures.countChanged.connect(lambda n: self.bottom_tabs.setTabText(0, f"Failures ({n})"))
        self.scans.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.recommendations.saved.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.explorer.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.map.saved.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.explorer.pathShown.connect(self.map.show_path)  # a path between two songs, drawn on the map
        self.preview.message.connect(self._on_preview_failed)
        self.session.folderShown.connect(self._on_folder_shown)
        self.engine.event.connect(self._on_engine_event)
        r = self.recommendations
        for signal in (r.count_box.valueChanged, r.exclude_artist.toggled, r.exclude_album.toggled,
                       self.player_controls.volume.valueChanged, self.mode_box.currentIndexChanged):
            signal.connect(self._remember_options)

    def _restore_layout(self) -> None:
        s = self.preferences
        if not s.geometry.isEmpty():
            self.restoreGeometry(s.geometry)
        self._fit_to_screen(restored=not s.geometry.isEmpty())
        width, height = self.width(), self.height()
        for splitter, state, sizes in (
                (self.main_splitter, s.main_splitter, [int(width * 0.44), int(width * 0.56)]),
                (self.side_splitter, s.side_splitter, [int(height * 0.5), int(height * 0.5)]),
                (self.outer_splitter, s.outer_splitter, [height - 90, 90])):
            if state.isEmpty() or not splitter.restoreState(state):
                splitter.setSizes(sizes)
        self.songs.sort_by(s.sort_column, descending=s.sort_descending)
        self.left_tabs.setCurrentIndex(s.left_tab if 0 <= s.left_tab < self.left_tabs.count() else 0)

    def _fit_to_screen(self, *, restored: bool) -> None:
        """Open inside the screen it opens on: 1280 × 820 at most, less on a small screen."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        room = screen.availableGeometry()
        if not restored:
            self.resize(min(1280, int(room.width() * 0.95)), min(820, int(room.height() * 0.92)))
            self.move(room.center() - self.rect().center())
        elif self.width() > room.width() or self.height() > room.height():
            self.resize(min(self.width(), room.width()), min(self.height(), room.height()))
            self.move(room.topLeft())

    def _start(self, folder) -> None:
        last = self.preferences.last_folder
        if folder:
            self.open_folder(str(folder))
        elif last and os.path.isdir(last):
            # Show the cached library at once; an incremental rescan picks up changes.
            self.open_folder(last)
            self._select_path(self.preferences.anchor_path)
        elif last:
            self.session.show_folder(last)
            self._select_path(self.preferences.anchor_path)
            self.statusBar().showMessage(f"The music folder {last} is not available.")
        else:
            self.open_folder(str(demo_folder()))

    def _select_path(self, path: str) -> None:
        if self.session.loading:  # a large folder: once all its songs are in the list
            self._path_to_select = path
            return
        track = self.session.library.track_by_path(path) if path else None  # by index, not a walk of the list
        if track is not None and self.session.track(track.id) is not None:
            self.songs.select_track(track.id)

    # -- what the window itself shows ---------------------------------------------------
    def open_folder(self, folder: str) -> None:
        """Show ``folder`` from the cache, remember it, and scan it for changes."""
        self.player.stop()
        if not self.scans.open_folder(folder):
            QMessageBox.warning(self, "Not a folder", f"{folder} is not a folder that can be opened.")
            return
        self.preferences.last_folder = self.session.folder

    def _on_folder_shown(self, _tracks) -> None:
        folder = self.session.folder
        self.setWindowTitle(f"musicrec — {os.path.basename(folder) or folder}")
        path, self._path_to_select = getattr(self, "_path_to_select", ""), ""
        if path and self.session.anchor is None:
            self._select_path(path)

    def _on_engine_event(self, event) -> None:
        if isinstance(event, EncoderFailed):
            QMessageBox.warning(self, "Encoder unavailable",
                                event.message + "\n\nThe cached library can still be browsed.")

    def _on_preview_failed(self, message: str) -> None:
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
        return next((url.toLocalFile() for url in mime.urls() if url.toLocalFile()
                     and os.path.isdir(url.toLocalFile())), None)

    # -- shutdown ---------------------------------------------------------------------------
    def _remember_options(self, *_args) -> None:
        s, r = self.preferences, self.recommendations
        s.analysis_mode = self.mode_box.currentData()
        s.n_recommendations = r.count
        s.exclude_same_artist = r.exclude_artist.isChecked()
        s.exclude_same_album = r.exclude_album.isChecked()
        s.volume = self.player_controls.volume.value()

    def save_preferences(self) -> None:
        s = self.preferences
        s.geometry = self.saveGeometry()
        s.main_splitter = self.main_splitter.saveState()
        s.side_splitter = self.side_splitter.saveState()
        s.outer_splitter = self.outer_splitter.saveState()
        s.left_tab = self.left_tabs.currentIndex()
        s.sort_column, s.sort_descending = self.songs.sort_order()
        s.anchor_path = self.session.anchor.path if self.session.anchor is not None else ""
        self._remember_options()
        store_preferences(self.store, s)

    def closeEvent(self, event) -> None:
        """Save the preferences, then stop PortAudio, the workers and the engine, in that order."""
        self.save_preferences()
        self.session.stop_loading()  # its read would hold the library open
        self.player.close()
        self.jobs.shutdown()
        self.engine.shutdown()
        super().closeEvent(event)

    # -- shortcuts for scripts and tests --------------------------------------------------
    @property
    def anchor(self):
        return self.session.anchor

    @property
    def spectrogram(self):
        return self.spectrogram_panel.view

    @property
    def spectrogram_ready(self) -> bool:
        return self.spectrogram_panel.ready

    def select_track(self, track_id: int | None) -> bool:
        return self.songs.select_track(track_id)
