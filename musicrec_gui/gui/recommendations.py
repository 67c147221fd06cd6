"""The anchor's nearest songs: a row per song (rank, score, thumbnail, title, play), and Save as playlist."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QScrollArea, QSizePolicy,
    QSpinBox, QVBoxLayout, QWidget,
)

from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.playlist import PLAYLIST_SUFFIXES, display_name, playlist_title, write_m3u8
from musicrec_gui.core.recommend import Recommendation
from musicrec_gui.core.spectrogram import compute_spectrogram
from musicrec_gui.gui.preview import RECOMMENDATION, Preview
from musicrec_gui.gui.recommendation_row import RecommendationRow
from musicrec_gui.gui.recommender import Answer, Query, Recommender
from musicrec_gui.gui.session import Session
from musicrec_gui.gui.spectrogram import thumbnail_image
from musicrec_gui.gui.tasks import BackgroundJobs

THUMBNAIL_CACHE = 256  # songs; each thumbnail is 120 × 44 pixels


class RecommendationPanel(QWidget):
    """Nearest songs to the session's anchor, with the controls that shape the list.

    Parameters
    ----------
    session, recommender, preview, jobs
        What it shows and asks; it connects itself to them.
    count, exclude_artist, exclude_album
        The remembered options.
    """

    shown = Signal()  # recommendations (or a message saying why there are none) are on screen
    saved = Signal(str)  # status text after a playlist was written

    def __init__(self, session: Session, recommender: Recommender, preview: Preview, jobs: BackgroundJobs, *,
                 count: int = 2, exclude_artist: bool = False, exclude_album: bool = False, actions=None,
                 parent=None):
        super().__init__(parent)
        self.session, self.recommender, self.preview, self.jobs = session, recommender, preview, jobs
        self.actions = actions  # a gui.actions.SongActions, for the rows' context menus
        self.can_play = preview.player.available
        self.recommendations: list[Recommendation] = []
        self.rows: list[RecommendationRow] = []
        self.last_playlist_warnings: list[str] = []
        self._thumbnails: OrderedDict[int, object] = OrderedDict()
        self.heading = QLabel("Songs like …")
        self.heading.setStyleSheet("font-weight: bold;")
        self.heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_box = QSpinBox()
        self.count_box.setRange(1, 100)
        self.count_box.setValue(count)
        self.count_box.setToolTip("How many similar songs to show")
        self.exclude_artist = QCheckBox("Exclude same artist")
        self.exclude_artist.setChecked(exclude_artist)
        self.exclude_artist.setToolTip("Leave out songs by the same artist as the selected song")
        self.exclude_album = QCheckBox("Exclude same album")
        self.exclude_album.setChecked(exclude_album)
        self.exclude_album.setToolTip("Leave out songs from the same album as the selected song")
        self.save_button = QPushButton("Save as playlist (M3U8)…")
        self.save_button.setEnabled(False)
        self.save_button.setToolTip("Save the selected song and the songs like it as a playlist file (M3U8) "
                                    "that music players open")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show"))
        for widget in (self.count_box, self.exclude_artist, self.exclude_album):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.save_button)
        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(4)
        self.list_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.list_widget)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.message = QLabel("Select a song in the list to see the songs that sound like it.")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.heading)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)

        self.count_box.valueChanged.connect(self.refresh)
        self.exclude_artist.toggled.connect(self.refresh)
        self.exclude_album.toggled.connect(self.refresh)
        self.save_button.clicked.connect(self._on_save_clicked)
        session.anchorChanged.connect(self.refresh)
        session.analysisChanged.connect(lambda _settings: self._thumbnails.clear())
        recommender.answered.connect(self._on_answered)
        recommender.indexChanged.connect(self.refresh)
        preview.changed.connect(self._show_playing)
        preview.positionChanged.connect(self._on_position)

    @property
    def count(self) -> int:
        return self.count_box.value()

    def query(self) -> Query | None:
        anchor = self.session.anchor
        if anchor is None:
            return None
        return Query(anchor, self.count, self.exclude_artist.isChecked(), self.exclude_album.isChecked())

    def refresh(self, *_args) -> None:
        anchor = self.session.anchor
        text = display_name(anchor) if anchor else "…"
        self.heading.setText(f"Songs like {text if len(text) <= 90 else text[:89] + '…'}")
        self.heading.setToolTip(display_name(anchor) if anchor else "")
        query = self.query()
        if query is None:
            self.show_message("Select a song in the list to see the songs that sound like it.")
            self.shown.emit()
            return
        self.recommender.ask(query)

    def _on_answered(self, answer: Answer) -> None:
        if answer.query != self.query():
            return  # the user has moved on
        if answer.message:
            self.show_message(answer.message)
            if answer.message != "Finding similar songs…":
                self.shown.emit()
            return
        self.set_recommendations(answer.recommendations)
        if answer.note and answer.recommendations:
            self.message.setText(answer.note)
            self.message.show()
        self.shown.emit()

    def show_message(self, text: str) -> None:
        self._clear_rows()
        self.recommendations = []
        self.save_button.setEnabled(False)
        self.message.setText(text)
        self.message.show()

    def set_recommendations(self, recs: list[Recommendation]) -> None:
        self._clear_rows()
        self.recommendations = list(recs)
        self.save_button.setEnabled(self.session.anchor is not None)
        if not recs:
            self.message.setText("No song to recommend: there is no other analysed song, or every other one is "
                                 "excluded or sounds identical to this one (a copy).")
            self.message.show()
            return
        self.message.hide()
        for rank, rec in enumerate(recs, 1):
            row = RecommendationRow(rank, rec, self.can_play)
            row.playClicked.connect(lambda track: self.preview.toggle(track, role=RECOMMENDATION))
            # Clicking a neighbour makes it the anchor (Back returns), as following a link does.
            row.clicked.connect(lambda track: self.session.set_anchor(self.session.track(track.id) or track))
            if self.actions is not None:
                row.menuRequested.connect(lambda track, at: self.actions.menu_for(track, self).popup(at))
            self.list_layout.insertWidget(self.list_layout.count() - 1, row)
            self.rows.append(row)
            self._load_thumbnail(row)
        self._show_playing()

    def _show_playing(self) -> None:
        playing = self.preview.playing_id(RECOMMENDATION)
        held = self.preview.held_id(RECOMMENDATION)
        for row in self.rows:
            row.set_playing(row.track.id == playing)
            if row.track.id != held:
                row.set_progress(None)
            elif row.thumbnail.progress is None:
                row.set_progress(self.preview.player.position())

    def _on_position(self, track, seconds: float) -> None:
        held = self.preview.held_id(RECOMMENDATION)
        for row in self.rows:
            if row.track.id == track.id and row.track.id == held:
                row.set_progress(seconds)

    def _clear_rows(self) -> None:
        for row in self.rows:
            self.list_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []

    # -- thumbnails ------------------------------------------------------------------------
    def _load_thumbnail(self, row: RecommendationRow) -> None:
        track = row.track
        cached = self._thumbnails.get(track.id)
        if cached is not None:
            self._thumbnails.move_to_end(track.id)
            row.thumbnail.setPixmap(QPixmap.fromImage(cached))
            return
        features = self.session.display_features

        def work():
            data = compute_spectrogram(track.path, settings=AnalysisSettings("excerpt", excerpt_seconds=12.0),
                                       config=features, duration=track.duration)
            return thumbnail_image(data.mel)

        def done(image):
            self._thumbnails[track.id] = image
            while len(self._thumbnails) > THUMBNAIL_CACHE:
                self._thumbnails.popitem(last=False)
            try:
                row.thumbnail.setPixmap(QPixmap.fromImage(image))
            except RuntimeError:  # the row was replaced meanwhile
                pass

        self.jobs.submit(work, done, lambda err: None)

    def thumbnails_ready(self) -> bool:
        return all(r.thumbnail.pixmap() is not None and not r.thumbnail.pixmap().isNull() for r in self.rows)

    # -- playlists ---------------------------------------------------------------------------
    def _on_save_clicked(self) -> None:
        anchor = self.session.anchor
        if anchor is None:
            return
        folder = self.session.folder if self.session.folder and not self.session.is_demo else str(Path.home())
        default = os.path.join(folder, f"Songs like {anchor.title}.m3u8".replace(os.sep, "_"))
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
        anchor = self.session.anchor
        if anchor is None:
            raise ValueError("Select a song first.")
        tracks = [anchor] + [r.track for r in self.recommendations]
        written = write_m3u8(output, tracks, title=playlist_title(anchor),
                             force=force and output == Path(path))
        self.last_playlist_warnings = written.warnings
        skipped = f" ({len(written.skipped)} left out)" if written.skipped else ""
        self.saved.emit(f"Saved {written.written} songs to {written.path}{skipped}")
        return written.path
