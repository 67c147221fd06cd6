"""The window's commands: toolbar, menu bar, keyboard shortcuts, and the Help menu's dialogs."""

from __future__ import annotations

import os

import html
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMainWindow, QMessageBox, QToolBar

from musicrec_gui import __version__
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.encoder import read_encoder_config
from musicrec_gui.core.resources import resource_path
from musicrec_gui.gui.actions import SongActions, tooltip_with_shortcut
from musicrec_gui.gui.engine import ScanQueued
from musicrec_gui.gui.scanning import ScanController

ANALYSIS_CHOICES = (("8 moments across the song", "spread"), ("30 s excerpt", "excerpt"),
                    ("whole song (slower)", "full"))


def music_folder() -> str:
    """Where the Open dialog starts the first time: the user's music folder if there is one."""
    from PySide6.QtCore import QStandardPaths

    for folder in QStandardPaths.standardLocations(QStandardPaths.StandardLocation.MusicLocation):
        if Path(folder).is_dir():
            return folder
    return str(Path.home())


class Commands(QObject):
    """Builds the toolbar and the menus of ``window`` and carries out the window-wide commands.

    ``window`` is the main window: it has ``open_folder(folder)`` and a ``songs`` panel whose
    ``filter_box`` Find focuses.
    """

    def __init__(self, window: QMainWindow, scans: ScanController, songs: SongActions):
        super().__init__(window)
        self.window, self.scans, self.songs = window, scans, songs
        self.session = scans.session

        def action(text: str, shortcut, slot, tip: str = "") -> QAction:
            made = QAction(text, window)
            if shortcut is not None:
                made.setShortcut(QKeySequence(shortcut))
            made.setToolTip(tooltip_with_shortcut(tip or text, made.shortcut()))
            made.setStatusTip(tip)
            made.triggered.connect(lambda _checked=False: slot())
            return made

        self.open = action("Open music folder…", QKeySequence.StandardKey.Open, self.open_folder_dialog,
                           "Choose the folder that holds your music (or drop a folder on the window)")
        self.rescan = action("Rescan", "F5", lambda: scans.start_scan(),
                             "Look for new, changed or removed songs in the folder")
        self.cancel = action("Cancel scan", None, scans.cancel, "Stop the scan after the current song")
        self.cancel.setEnabled(False)
        self.retry = action("Retry failed files", None, lambda: scans.start_scan(retry_failed=True),
                            "Analyse again the files that could not be analysed")
        self.quit = action("Quit", "Ctrl+Q", window.close,
                           "Close musicrec; the window layout and your choices are kept")
        self.find = action("Find…", QKeySequence.StandardKey.Find, self.focus_filter,
                           "Type to filter the song list")
        self.shortcuts = action("Keyboard shortcuts", QKeySequence.StandardKey.HelpContents, self.show_shortcuts,
                                "List every keyboard shortcut and mouse gesture")
        self.about = action("About musicrec", None, self.show_about,
                            "The version, the encoder in use and the licences of musicrec and its parts")

        self.mode_box = QComboBox()
        for text, mode in ANALYSIS_CHOICES:
            self.mode_box.addItem(text, mode)
        self.mode_box.setCurrentIndex(max(0, self.mode_box.findData(self.session.analysis.mode)))
        self.mode_box.setToolTip("How much of each song is analysed; changing it analyses the folder again "
                                 "(songs keep their previous neighbours until then)")
        self.mode_box.currentIndexChanged.connect(lambda _i: self.session.set_analysis(self.mode_box.currentData()))
        self.folder_label = QLabel("")
        self.folder_label.setStyleSheet("color: #555; padding-left: 6px;")
        self._build_toolbar()
        self._build_menus()
        self.session.folderShown.connect(self._on_folder_shown)
        scans.engine.event.connect(self._on_engine_event)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Library")
        toolbar.setObjectName("library-toolbar")
        toolbar.setMovable(False)
        self.window.addToolBar(toolbar)
        for item in (self.open, self.rescan, self.cancel):
            toolbar.addAction(item)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Analyse: "))
        toolbar.addWidget(self.mode_box)
        toolbar.addSeparator()
        toolbar.addWidget(self.folder_label)

    def _build_menus(self) -> None:
        bar = self.window.menuBar()
        library = bar.addMenu("&Library")
        for item in (self.open, self.rescan, self.cancel, self.retry):
            library.addAction(item)
        library.addSeparator()
        library.addAction(self.quit)
        song = bar.addMenu("&Song")
        s = self.songs
        for item in (s.play_pause, s.stop, None, s.back, s.forward, None, self.find, None, s.reveal, s.copy_path,
                     None, s.reanalyse):
            song.addSeparator() if item is None else song.addAction(item)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.shortcuts)
        help_menu.addAction(self.about)

    # -- commands -------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        session = self.session
        start = session.folder if session.folder and not session.is_demo else music_folder()
        folder = QFileDialog.getExistingDirectory(self.window, "Open music folder", start)
        if folder:
            self.window.open_folder(folder)

    def focus_filter(self) -> None:
        box = self.window.songs.filter_box
        box.setFocus()
        box.selectAll()

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for every command that has a shortcut, in menu order."""
        actions = [self.open, self.rescan, self.quit, self.find, self.songs.play_pause, self.songs.back,
                   self.songs.forward, self.songs.copy_path, self.shortcuts]
        rows = [(a.shortcut().toString(QKeySequence.SequenceFormat.NativeText), a.text().replace("&", ""))
                for a in actions if not a.shortcut().isEmpty()]
        return rows + [("Enter / double-click", "Play the song in the list"),
                       ("Right-click", "More for a song: play, find similar, show, copy path, re-analyse"),
                       ("Click the spectrogram", "Play from there"),
                       ("Double-click the spectrogram", "Reset the zoom")]

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>&nbsp;&nbsp;{html.escape(t)}</td></tr>"
                       for k, t in self.shortcut_rows())
        QMessageBox.information(self.window, "Keyboard shortcuts", f"<table>{rows}</table>")

    def about_text(self) -> str:
        try:
            config = read_encoder_config(self.session.encoder_path)
            encoder = f"{config.name} {config.version}"
        except Exception as err:  # noqa: BLE001 - the About box says what is wrong instead
            encoder = f"unavailable ({err})"
        licence = resource_path("encoder") / "LICENSE-musicnn.txt"
        return (f"<h3>musicrec {__version__}</h3>"
                "<p>Finds the songs in your own music folder that sound like the one you are listening to.</p>"
                f"<p><b>Encoder:</b> {html.escape(encoder)}<br>"
                "musicnn (Pons &amp; Serra, 2019), trained on the Million Song Dataset; ISC licence"
                f"{' (' + html.escape(str(licence.name)) + ' beside the model)' if licence.is_file() else ''}.</p>"
                "<p><b>Built with</b> Qt for Python (PySide6, LGPL), TensorFlow and Keras (Apache 2.0), librosa "
                "(ISC), pyqtgraph (MIT), sounddevice/PortAudio (MIT), NumPy (BSD), FFmpeg via PyAV (LGPL), "
                "libsndfile (LGPL).</p>"
                "<p>The demo songs are freely licensed music from Debian packages; see "
                "<code>resources/demo/</code>.</p><p>musicrec itself: MIT licence.</p>")

    def show_about(self) -> None:
        QMessageBox.about(self.window, "About musicrec", self.about_text())

    # -- following the session and the engine ----------------------------------------------
    def _on_folder_shown(self, _tracks) -> None:
        folder = self.session.folder
        self.folder_label.setText(f"Folder: {'the demo library' if self.session.is_demo else _home_relative(folder)}")
        self.folder_label.setToolTip(folder)

    def _on_engine_event(self, event) -> None:
        if isinstance(event, ScanQueued):
            self.cancel.setEnabled(True)
        elif isinstance(event, scan_mod.ScanFinished):
            self.cancel.setEnabled(False)


def _home_relative(folder: str) -> str:
    """"~/Music/Jazz" for a folder in the user's home (shorter, and what a person calls it)."""
    home = os.path.expanduser("~")
    if folder and home not in ("", "/") and (folder + os.sep).startswith(home.rstrip(os.sep) + os.sep):
        return "~" + folder[len(home.rstrip(os.sep)):]
    return folder
