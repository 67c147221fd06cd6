"""Previewing songs: which song plays, from where, and the controls under the spectrogram."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QStyle, QWidget

from musicrec_gui.core.library import Track
from musicrec_gui.core.playlist import display_name
from musicrec_gui.gui.player import LOADING, PAUSED, PLAYING, STOPPED, BasePlayer, clock_text
from musicrec_gui.gui.session import Session

ANCHOR, RECOMMENDATION = "anchor", "rec"


class Preview(QObject):
    """One song plays at a time: the anchor or one of its neighbours, from the part that is shown.

    Parameters
    ----------
    session : Session
    player : BasePlayer
        A real or a null player (``player.make_player``).
    """

    changed = Signal()  # what plays, or its state, changed
    positionChanged = Signal(object, float)  # Track playing, seconds in the song
    message = Signal(str)  # a preview failed

    def __init__(self, session: Session, player: BasePlayer, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.player = player
        self._asked: tuple[object, Track] | None = None  # (player key, song) last asked to play
        player.stateChanged.connect(lambda *_: self.changed.emit())
        player.positionChanged.connect(self._on_position)
        player.failed.connect(self.message)
        session.anchorChanged.connect(lambda _track: self.changed.emit())

    @property
    def last_asked(self) -> Track | None:
        """The song last asked to play, whatever became of it (it may have failed or ended)."""
        return self._asked[1] if self._asked is not None else None

    @property
    def track(self) -> Track | None:
        """The song in the player's hands (loading, playing or paused), else None."""
        if self._asked is not None and self.player.state != STOPPED and self.player.key == self._asked[0]:
            return self._asked[1]
        return None

    def toggle(self, track: Track, *, role: str = RECOMMENDATION) -> None:
        """Play ``track``, or pause/resume it if it is the one playing."""
        key = (role, track.id)
        self._asked = (key, track)
        self.player.toggle(key, track.path, self.session.start_point(track))

    def toggle_anchor(self) -> None:
        if self.session.anchor is not None:
            self.toggle(self.session.anchor, role=ANCHOR)

    def seek_anchor(self, seconds: float) -> None:
        """Play the anchor from ``seconds`` into it: a seek if it is in hand, else a fresh start there."""
        if self.session.anchor is not None:
            self.play_at(self.session.anchor, seconds, role=ANCHOR)

    def play_at(self, track: Track, seconds: float, *, role: str = RECOMMENDATION) -> None:
        """Play ``track`` from ``seconds`` into it: a seek if it is in hand, else a fresh start there."""
        if not self.player.available:
            return
        key = (role, track.id)
        self._asked = (key, track)
        seconds = max(0.0, min(float(seconds), track.duration)) if track.duration > 0 else max(0.0, float(seconds))
        if self.player.key == key and self.player.state != STOPPED:
            self.player.seek(seconds)
            if self.player.state == PAUSED:
                self.player.resume()
        else:
            self.player.play(key, track.path, seconds)

    def stop(self) -> None:
        self.player.stop()

    def set_volume(self, percent: int) -> None:
        self.player.set_volume(percent / 100)

    def playing_id(self, role: str) -> int | None:
        """The id of the song of ``role`` that plays now (paused does not count), else None."""
        key = self.player.key
        if isinstance(key, tuple) and key[0] == role and self.player.state == PLAYING:
            return key[1]
        return None

    def held_id(self, role: str) -> int | None:
        """The id of the song of ``role`` in the player's hands (loading, playing or paused), else None."""
        key = self.player.key
        if isinstance(key, tuple) and key[0] == role and self.player.state != STOPPED:
            return key[1]
        return None

    def anchor_state(self) -> str | None:
        """The player's state if it holds the anchor, else None."""
        anchor = self.session.anchor
        if anchor is not None and self.player.key == (ANCHOR, anchor.id):
            return self.player.state
        return None

    def status_text(self) -> str:
        """"Playing: Artist – Title" (or Paused, Loading) for the song in hand; empty when none."""
        track = self.track
        state = self.player.state
        if track is None or state not in (PLAYING, PAUSED, LOADING):
            return ""
        verb = {PLAYING: "Playing", PAUSED: "Paused", LOADING: "Loading"}[state]
        return f"{verb}: {display_name(track)}"

    def time_text(self, seconds: float | None = None) -> str:
        """"1:23 / 4:05": where the song in hand is, and its length (if known); empty when none."""
        track = self.track
        if track is None:
            return ""
        seconds = self.player.position() if seconds is None else seconds
        if track.duration > 0:
            return f"{clock_text(min(seconds, track.duration))} / {clock_text(track.duration)}"
        return clock_text(seconds)

    def _on_position(self, seconds: float) -> None:
        track = self.track
        if track is not None:
            self.positionChanged.emit(track, seconds)


class PlayerControls(QWidget):
    """Play/pause the anchor, stop, elapsed/total time, volume, and what is playing."""

    def __init__(self, preview: Preview, *, volume: int = 80, parent: QWidget | None = None):
        super().__init__(parent)
        self.preview = preview
        self.play_button = QPushButton("Play")
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play the selected song from the part that is shown, or pause it (Space)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setToolTip("Stop the preview")
        self.time_label = QLabel("")
        self.time_label.setToolTip("Elapsed / total time of the song playing")
        font = self.time_label.font()
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setFamily("monospace")
        self.time_label.setFont(font)
        self.time_label.setMinimumWidth(self.time_label.fontMetrics().horizontalAdvance("0:00:00 / 0:00:00"))
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(volume)
        self.volume.setFixedWidth(110)
        self.volume.setToolTip("Volume")
        self.now_playing = QLabel("")
        self.now_playing.setStyleSheet("color: #555;")
        self.now_playing.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.stop_button)
        layout.addWidget(self.time_label)
        layout.addWidget(QLabel("Volume"))
        layout.addWidget(self.volume)
        layout.addWidget(self.now_playing, 1)
        self.play_button.clicked.connect(preview.toggle_anchor)
        self.stop_button.clicked.connect(preview.stop)
        self.volume.valueChanged.connect(preview.set_volume)
        preview.set_volume(volume)
        preview.changed.connect(self.refresh)
        preview.positionChanged.connect(lambda _track, seconds: self._show_time(seconds))
        player = preview.player
        if not player.available:
            for widget in (self.play_button, self.stop_button, self.volume):
                widget.setEnabled(False)
                widget.setToolTip(player.unavailable_reason)
        self.refresh()

    def attach_radio(self, radio) -> None:
        """Add the radio's on/off button (a ``gui.radio.Radio``)."""
        self.radio_button = QPushButton("Radio")
        self.radio_button.setCheckable(True)
        self.radio_button.setToolTip("Radio: when a song ends, play the nearest song not played yet "
                                     "(with the same exclusions as the recommendations)")
        self.radio_button.setEnabled(self.preview.player.available)
        self.radio_button.toggled.connect(radio.set_enabled)
        radio.changed.connect(self.radio_button.setChecked)
        self.layout().insertWidget(2, self.radio_button)

    def refresh(self) -> None:
        state = self.preview.anchor_state()
        if state == PLAYING:
            self.play_button.setText("Pause")
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        else:
            self.play_button.setText("Resume" if state == PAUSED else "Play")
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        text = self.preview.status_text()
        self.now_playing.setText(text)
        self.now_playing.setToolTip(text)
        self._show_time()
        if self.preview.player.available:  # else the controls stay disabled, saying why
            anchor = self.preview.session.anchor
            # A file that could not be decoded cannot be previewed either.
            failed = anchor is not None and anchor.status == "failed"
            self.play_button.setEnabled(anchor is not None and not failed)
            self.play_button.setToolTip(f"Cannot play: {anchor.error}" if failed else
                                        "Play the selected song from the part that is shown, or pause it (Space)")
            self.stop_button.setEnabled(self.preview.player.state != STOPPED)

    def _show_time(self, seconds: float | None = None) -> None:
        """Where the song in hand is; with none, the anchor's length, greyed."""
        text = self.preview.time_text(seconds)
        anchor = self.preview.session.anchor
        self.time_label.setEnabled(bool(text))
        if not text and anchor is not None and anchor.duration > 0:
            text = f"0:00 / {clock_text(anchor.duration)}"
        self.time_label.setText(text)
