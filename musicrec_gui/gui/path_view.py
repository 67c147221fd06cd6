"""A path between two songs: a playlist that moves step by step from one to the other."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
    QWidget,
)

from musicrec_gui.core.explore import ExploreError, PathStep, song_path
from musicrec_gui.core.library import Track
from musicrec_gui.core.playlist import display_name
from musicrec_gui.core.recommend import closeness_percent
from musicrec_gui.gui.playlist_save import ask_and_save, saved_text
from musicrec_gui.gui.session import Session

DEFAULT_LENGTH = 8


class PathView(QDialog):
    """From ``start`` to ``end`` in ``length`` songs, each near the one before and nearer the end.

    Parameters
    ----------
    session : Session
    recommender : Recommender
        Its index (the open folder's songs) is searched.
    radio : Radio or None
        "Play the path" hands it the songs in order.
    start, end : Track
    """

    pathChanged = Signal(list)  # track ids, start to end (for the map)
    saved = Signal(str)  # status text after a playlist was written

    def __init__(self, session: Session, recommender, radio, start: Track, end: Track,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("A path between two songs")
        self.session, self.recommender, self.radio = session, recommender, radio
        self.start, self.end = start, end
        self.steps: list[PathStep] = []
        self.heading = QLabel(f"From <b>{_html(display_name(start))}</b><br>to <b>{_html(display_name(end))}</b>")
        self.heading.setWordWrap(True)
        self.length_box = QSpinBox()
        self.length_box.setRange(3, 50)
        self.length_box.setValue(DEFAULT_LENGTH)
        self.length_box.setToolTip("How many songs the path holds, the start and the end included")
        self.list = QTreeWidget()
        self.list.setRootIsDecorated(False)
        self.list.setHeaderLabels(["#", "Song", "Like the song before"])
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.list.header().setStretchLastSection(False)
        self.list.headerItem().setToolTip(2, "How alike each song is to the one before it: closer than this share "
                                             "of the song pairs of this folder")
        self.list.setToolTip("Each song is near the one before it and nearer the end. "
                             "Double-click to play the path from there.")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #555;")
        self.play_button = QPushButton("Play the path")
        self.play_button.setToolTip("Play these songs in order; then the radio goes on from the last one")
        self.play_button.setEnabled(radio is not None and radio.preview.player.available)
        self.save_button = QPushButton("Save playlist…")
        self.save_button.setToolTip("Write the path as an M3U8 playlist")
        close = QPushButton("Close")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Songs"))
        controls.addWidget(self.length_box)
        controls.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(controls)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.length_box.valueChanged.connect(self.compute)
        self.play_button.clicked.connect(self._play)
        self.save_button.clicked.connect(self._save)
        self.list.itemDoubleClicked.connect(self._play_item)
        close.clicked.connect(self.close)
        self.resize(520, 520)
        self.compute()

    def compute(self, *_args) -> None:
        """Find the path again (the length changed); the list, the map and the buttons follow."""
        self.list.clear()
        index = self.recommender.index
        try:
            if index is None:
                raise ExploreError("The similar songs of this folder are still being gathered; try again in a moment.")
            self.steps = song_path(index, start_id=self.start.id, end_id=self.end.id,
                                   length=self.length_box.value())
        except ExploreError as err:
            self.steps = []
            self.message.setText(str(err))
        else:
            for number, step in enumerate(self.steps, 1):
                likeness = f"closer than {closeness_percent(index.closeness(step.from_previous))} %" \
                    if number > 1 else ""
                item = QTreeWidgetItem([str(number), display_name(step.track), likeness])
                item.setToolTip(1, step.track.display_path)
                self.list.addTopLevelItem(item)
            for column in (0, 2):
                self.list.resizeColumnToContents(column)
            short = len(self.steps) < self.length_box.value()
            self.message.setText("This folder has too few analysed songs for a longer path." if short else "")
        self.save_button.setEnabled(bool(self.steps))
        self.play_button.setEnabled(bool(self.steps) and self.radio is not None
                                    and self.radio.preview.player.available)
        self.pathChanged.emit([s.track.id for s in self.steps])

    def track_ids(self) -> list[int]:
        return [s.track.id for s in self.steps]

    def _play(self) -> None:
        if self.radio is not None and self.steps:
            self.radio.play_queue(self.track_ids())

    def _play_item(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        if self.radio is not None:
            self.radio.play_queue(self.track_ids()[self.list.indexOfTopLevelItem(item):])

    def _save(self) -> None:
        folder = self.session.folder if self.session.folder and not self.session.is_demo else str(Path.home())
        title = f"From {display_name(self.start)} to {display_name(self.end)}"
        written = ask_and_save(self, [s.track for s in self.steps], folder=folder, name=f"{title}.m3u8", title=title)
        if written is not None:
            self.saved.emit(saved_text(written))

    def closeEvent(self, event) -> None:
        self.pathChanged.emit([])
        super().closeEvent(event)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
