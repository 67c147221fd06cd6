"""What a user can do with songs, as actions with shortcuts: the menus and the context menus share them."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from musicrec_gui.core.library import Track
from musicrec_gui.gui.preview import ANCHOR, Preview
from musicrec_gui.gui.session import Session

def tooltip_with_shortcut(tip: str, shortcut: QKeySequence) -> str:
    """``tip`` followed by the shortcut as the platform writes it ("… (Ctrl+O)"), if there is one."""
    keys = shortcut.toString(QKeySequence.SequenceFormat.NativeText)
    return f"{tip} ({keys})" if keys else tip


REANALYSE_TIP = ("Analyse the song again with the current encoder and analysis mode, even if it was analysed "
                 "before (a result you doubt, or a file that changed); a running scan goes on after it")


class SongActions(QObject):
    """Play/pause, stop, Back/Forward through the anchors, and per-song actions for context menus.

    Parameters
    ----------
    session : Session
    preview : Preview
    scans : ScanController or None
        Carries out Re-analyse (without it, there is no such action).
    """

    pathRequested = Signal(object, object)  # start, end Track: show a path between them
    radioRequested = Signal(object)  # Track: play it, and then the songs nearest to what plays

    def __init__(self, session: Session, preview: Preview, parent: QObject | None = None, *, scans=None):
        super().__init__(parent)
        self.session, self.preview, self.scans = session, preview, scans
        self.play_pause = self._action("Play / Pause", "Space", preview.toggle_anchor,
                                       "Play the selected song, or pause it")
        self.stop = self._action("Stop", None, preview.stop, "Stop the preview")
        self.back = self._action("Back", QKeySequence.StandardKey.Back, lambda: session.go(-1),
                                 "The song you were looking at before")
        self.forward = self._action("Forward", QKeySequence.StandardKey.Forward, lambda: session.go(1),
                                    "The song you went back from")
        self.reveal = self._action("Show in file manager", None, lambda: self.reveal_song(session.anchor),
                                   "Open the folder that holds the selected song")
        self.copy_path = self._action("Copy path", QKeySequence.StandardKey.Copy,
                                      lambda: self.copy_song_path(session.anchor), "Copy the selected song's path")
        self.reanalyse = self._action("Re-analyse", None, lambda: self.reanalyse_songs([session.anchor]),
                                      REANALYSE_TIP)
        session.historyChanged.connect(self._update)
        session.anchorChanged.connect(self._update)
        preview.changed.connect(self._update)
        self._update()

    def _action(self, text: str, shortcut, slot, tip: str) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tooltip_with_shortcut(tip, action.shortcut()))
        action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _update(self, *_args) -> None:
        anchor = self.session.anchor
        self.back.setEnabled(self.session.can_go(-1))
        self.forward.setEnabled(self.session.can_go(1))
        playable = anchor is not None and anchor.status != "failed" and self.preview.player.available
        self.play_pause.setEnabled(playable)
        self.stop.setEnabled(self.preview.player.key is not None)
        for action in (self.reveal, self.copy_path):
            action.setEnabled(anchor is not None)
        self.reanalyse.setEnabled(self.can_reanalyse(anchor))

    # -- one song -----------------------------------------------------------------------
    @staticmethod
    def reveal_song(track: Track | None) -> bool:
        """Open the song's folder in the desktop's file manager; False if none could be started."""
        if track is None:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(track.path)))

    @staticmethod
    def copy_song_path(track: Track | None) -> None:
        if track is not None:
            QGuiApplication.clipboard().setText(track.display_path)

    def can_reanalyse(self, track: Track | None) -> bool:
        """Whether ``track`` can be analysed again: there is an encoder and its file was found by the last scan."""
        return self.scans is not None and track is not None and not track.missing and bool(self.session.encoder_key)

    def reanalyse_songs(self, tracks: list[Track | None]) -> bool:
        """Analyse these songs again with the encoder and analysis mode in use (see ``Engine.reanalyse``)."""
        tracks = [t for t in tracks if self.can_reanalyse(t)]
        return bool(tracks) and self.scans.reanalyse(tracks)

    def menu_for(self, track: Track, parent: QWidget) -> QMenu:
        """A context menu for ``track``: play it, find songs like it, show it, copy its path, analyse it again."""
        menu = QMenu(parent)
        menu.setToolTipsVisible(True)

        def add(text: str, tip: str, slot, enabled: bool = True) -> None:
            action = menu.addAction(text)
            action.setToolTip(tip)
            action.setStatusTip(tip)  # shown in the window's status bar while the item is highlighted
            action.setEnabled(enabled)
            action.triggered.connect(lambda _checked=False: slot())

        add("Play", "Play a preview of this song, or pause it", lambda: self._play(track),
            self.preview.player.available and track.status != "failed")
        add("Find similar songs", "Make this the song whose neighbours are shown",
            lambda: self.session.set_anchor(self.session.track(track.id) or track), track.status == "done")
        anchor = self.session.anchor
        add("Path from the selected song to this one…",
            "A playlist that moves step by step from the selected song to this one",
            lambda: self.pathRequested.emit(anchor, track),
            anchor is not None and anchor.id != track.id and anchor.status == "done" and track.status == "done")
        add("Start radio from this song", "Play this song, then the nearest song not played yet, and so on",
            lambda: self.radioRequested.emit(self.session.track(track.id) or track),
            self.preview.player.available and track.status == "done")
        menu.addSeparator()
        add("Show in file manager", "Open the folder that holds this song", lambda: self.reveal_song(track))
        add("Copy path", "Copy this song's path to the clipboard", lambda: self.copy_song_path(track))
        if self.scans is not None:
            menu.addSeparator()
            add("Re-analyse", REANALYSE_TIP, lambda: self.reanalyse_songs([self.session.track(track.id) or track]),
                self.can_reanalyse(track))
        return menu

    def _play(self, track: Track) -> None:
        anchor = self.session.anchor
        if anchor is not None and anchor.id == track.id:
            self.preview.toggle_anchor()
        else:
            self.preview.toggle(track)

    def play_as_anchor(self, track: Track) -> None:
        """Make ``track`` the anchor and play it (double-click or Enter on a song)."""
        self.session.set_anchor(track)
        if self.preview.player.available and track.status != "failed":
            if self.preview.anchor_state() != "playing":
                self.preview.toggle(track, role=ANCHOR)
