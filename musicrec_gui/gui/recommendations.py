"""The anchor's nearest songs: a row per song (rank, score, thumbnail, title, play), and Save as playlist."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy,
    QSpinBox, QVBoxLayout, QWidget,
)

from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.playback import clock_text
from musicrec_gui.core.playlist import display_name, playlist_title
from musicrec_gui.core.recommend import Recommendation
from musicrec_gui.core.spectrogram import compute_spectrogram
from musicrec_gui.gui.playlist_save import ask_and_save, saved_text, write_playlist
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
    explainRequested = Signal(object)  # Track: show why it is like the anchor

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
        self.exclude_artist.setToolTip("Leave out songs by the same artist as the selected song "
                                       "(the radio follows this too)")
        self.exclude_album = QCheckBox("Exclude same album")
        self.exclude_album.setChecked(exclude_album)
        self.exclude_album.setToolTip("Leave out songs from the same album as the selected song "
                                      "(the radio follows this too)")
        self.save_button = QPushButton("Save playlist…")
        self.save_button.setEnabled(False)
        self.save_button.setToolTip("Save the selected song and the songs like it as a playlist file (M3U8) "
                                    "that music players open")
        self.whole_song_button = QPushButton("Whole song")
        self.whole_song_button.setToolTip("Forget the selected passage: songs like the whole song again")
        self.whole_song_button.hide()
        self.whole_song_button.clicked.connect(lambda: session.set_passage(None))
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
        heading = QHBoxLayout()
        heading.addWidget(self.heading, 1)
        heading.addWidget(self.whole_song_button)
        layout.addLayout(heading)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)

        self.count_box.valueChanged.connect(self.refresh)
        self.exclude_artist.toggled.connect(self.refresh)
        self.exclude_album.toggled.connect(self.refresh)
        self.save_button.clicked.connect(self._on_save_clicked)
        session.anchorChanged.connect(self.refresh)
        session.passageChanged.connect(self.refresh)
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
        return Query(anchor, self.count, self.exclude_artist.isChecked(), self.exclude_album.isChecked(),
                     self.session.passage)

    def refresh(self, *_args) -> None:
        anchor = self.session.anchor
        text = display_name(anchor) if anchor else "…"
        text = text if len(text) <= 90 else text[:89] + "…"
        passage = self.session.passage
        if passage is not None and anchor is not None:
            self.heading.setText(f"Songs with a moment like {clock_text(passage[0])}–{clock_text(passage[1])} "
                                 f"of {text}")
        else:
            self.heading.setText(f"Songs like {text}")
        self.whole_song_button.setVisible(passage is not None and anchor is not None)
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
            row.playClicked.connect(lambda track, rec=rec: self._play(rec))
            row.whyClicked.connect(lambda track: self.explainRequested.emit(track))
            # Clicking a neighbour makes it the anchor (Back returns), as following a link does.
            row.clicked.connect(lambda track: self.session.set_anchor(self.session.track(track.id) or track))
            if self.actions is not None:
                row.menuRequested.connect(lambda track, at: self.actions.menu_for(track, self).popup(at))
            self.list_layout.insertWidget(self.list_layout.count() - 1, row)
            self.rows.append(row)
            self._load_thumbnail(row)
        self._show_playing()

    def _play(self, rec: Recommendation) -> None:
        """Play a recommendation; one found by a passage plays from its matching moment."""
        moment = getattr(rec, "moment", None)
        if moment is None or self.preview.held_id(RECOMMENDATION) == rec.track.id:
            self.preview.toggle(rec.track, role=RECOMMENDATION)
        else:
            self.preview.play_at(rec.track, moment, role=RECOMMENDATION)

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
        written = ask_and_save(self, [anchor] + [r.track for r in self.recommendations], folder=folder,
                               name=f"Songs like {anchor.title}.m3u8", title=playlist_title(anchor))
        if written is not None:
            self.last_playlist_warnings = written.warnings
            self.saved.emit(saved_text(written))

    def save_playlist(self, path: str, *, force: bool = False) -> Path:
        """Write the anchor and its recommendations as an M3U8 playlist (see ``playlist_save.write_playlist``).

        Songs that could not be named in the playlist are described in ``last_playlist_warnings``.
        """
        anchor = self.session.anchor
        if anchor is None:
            raise ValueError("Select a song first.")
        written = write_playlist(path, [anchor] + [r.track for r in self.recommendations],
                                 title=playlist_title(anchor), force=force)
        self.last_playlist_warnings = written.warnings
        self.saved.emit(saved_text(written))
        return written.path
