"""Audio preview through sounddevice, behind a factory that falls back to a null player.

``make_player()`` returns a :class:`Player` (a PortAudio callback stream) or, when
PortAudio or an output device is missing, a :class:`NullPlayer` whose
``unavailable_reason`` the window shows once; everything else keeps working.
One song plays at a time; each starts at a sensible point (the analysed
excerpt's start, usually the middle of the song). Decoding happens in a worker
thread with the core's ``load_audio`` at the device's rate.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from musicrec_gui.core.audio import load_audio
from musicrec_gui.gui.tasks import BackgroundJobs

STOPPED, LOADING, PLAYING, PAUSED = "stopped", "loading", "playing", "paused"
# A preview never decodes more than this from its start point.
MAX_PREVIEW_SECONDS = 300.0


class BasePlayer(QObject):
    """What the window needs of a player."""

    stateChanged = Signal(str, object)  # state, key of the song (None when stopped)
    positionChanged = Signal(float)  # seconds in the song
    failed = Signal(str)

    available = True
    unavailable_reason = ""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = STOPPED
        self.key = None
        self.volume = 0.8

    def play(self, key, path: str, start: float = 0.0) -> None:
        raise NotImplementedError

    def toggle(self, key, path: str, start: float = 0.0) -> None:
        """Play ``key``, or pause/resume it if it is the song in hand."""
        if key == self.key and self.state == PLAYING:
            self.pause()
        elif key == self.key and self.state == PAUSED:
            self.resume()
        elif key == self.key and self.state == LOADING:
            return
        else:
            self.play(key, path, start)

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def set_volume(self, volume: float) -> None:
        self.volume = float(min(1.0, max(0.0, volume)))

    def close(self) -> None:
        self.stop()


class NullPlayer(BasePlayer):
    """No audio output here; says why, and does nothing."""

    available = False

    def __init__(self, reason: str, parent: QObject | None = None):
        super().__init__(parent)
        self.unavailable_reason = reason

    def play(self, key, path: str, start: float = 0.0) -> None:
        self.failed.emit(self.unavailable_reason)


class Player(BasePlayer):
    """Plays one song at a time through a sounddevice callback ``OutputStream``."""

    _decoded = Signal(int, object)
    _decodeFailed = Signal(int, str)
    _streamFinished = Signal(int)

    def __init__(self, sounddevice_module, device=None, parent: QObject | None = None):
        super().__init__(parent)
        self._sd = sounddevice_module
        self._device = device
        info = self._sd.query_devices(device, kind="output")
        self.device_name = info.get("name", "")
        self.sample_rate = int(info.get("default_samplerate") or 44100)
        self.channels = 2 if int(info.get("max_output_channels", 1)) >= 2 else 1
        self._jobs = BackgroundJobs(1, self)
        self._token = 0
        self._stream = None
        self._audio = np.zeros(0, dtype=np.float32)
        self._frame = 0
        self._start_seconds = 0.0
        self._lock = threading.Lock()
        self._clock = (0.0, 0)  # (monotonic time, frame) when the stream (re)started
        self.frames_delivered = 0  # total frames handed to the device (for tests and diagnostics)
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._on_tick)
        self._decoded.connect(self._on_decoded)
        self._decodeFailed.connect(self._on_decode_failed)
        self._streamFinished.connect(self._on_stream_finished)

    # -- control (GUI thread) -----------------------------------------------
    def play(self, key, path: str, start: float = 0.0) -> None:
        self._close_stream()
        self._token += 1
        token = self._token
        self.key = key
        self._start_seconds = max(0.0, float(start))
        self._set_state(LOADING)
        rate = self.sample_rate

        def decode():
            return load_audio(path, sample_rate=rate, offset=self._start_seconds, duration=MAX_PREVIEW_SECONDS)

        self._jobs.submit(decode, lambda audio: self._decoded.emit(token, audio),
                          lambda err: self._decodeFailed.emit(token, str(err)))

    @Slot(int, object)
    def _on_decoded(self, token: int, audio) -> None:
        if token != self._token:
            return
        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        self._frame = 0
        try:
            self._stream = self._sd.OutputStream(
                samplerate=self.sample_rate, channels=self.channels, dtype="float32", device=self._device,
                callback=self._callback, finished_callback=lambda t=token: self._emit_finished(t),
            )
            self._clock = (time.monotonic(), 0)
            self._stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudio errors of every kind
            self._stream = None
            self.key = None
            self._set_state(STOPPED)
            self.failed.emit(f"Cannot play: {err}")
            return
        self._set_state(PLAYING)
        self._timer.start()

    @Slot(int, str)
    def _on_decode_failed(self, token: int, message: str) -> None:
        if token != self._token:
            return
        self.key = None
        self._set_state(STOPPED)
        self.failed.emit(f"Cannot play this song: {message}")

    def pause(self) -> None:
        if self.state == PLAYING and self._stream is not None:
            self._stream.stop()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state == PAUSED and self._stream is not None:
            with self._lock:
                self._clock = (time.monotonic(), self._frame)
            self._stream.start()
            self._set_state(PLAYING)
            self._timer.start()

    def stop(self) -> None:
        self._token += 1
        self._close_stream()
        if self.state != STOPPED:
            self.key = None
            self._set_state(STOPPED)

    def close(self) -> None:
        self.stop()
        self._jobs.shutdown()

    def position(self) -> float:
        return self._start_seconds + self._frame / self.sample_rate

    @property
    def stream(self):
        return self._stream

    def _close_stream(self) -> None:
        self._timer.stop()
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # noqa: BLE001 - the device may have vanished
                pass

    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state, self.key)

    @Slot()
    def _on_tick(self) -> None:
        if self.state == PLAYING:
            self.positionChanged.emit(self.position())

    def _emit_finished(self, token: int) -> None:
        try:
            self._streamFinished.emit(token)
        except RuntimeError:
            pass

    @Slot(int)
    def _on_stream_finished(self, token: int) -> None:
        if token == self._token and self.state == PLAYING:
            self._timer.stop()
            self.positionChanged.emit(self.position())
            self.stop()

    # -- audio thread ---------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status) -> None:
        with self._lock:
            # A real device pulls at its own pace; a device that pulls faster than real time
            # (ALSA's null device, some virtual sinks) is paced here so the position stays true.
            t0, f0 = self._clock
            ahead = (self._frame - f0) / self.sample_rate - (time.monotonic() - t0)
            if ahead > 0.3:
                time.sleep(min(ahead - 0.25, 0.05))
            start = self._frame
            chunk = self._audio[start:start + frames]
            n = len(chunk)
            if n:
                scaled = chunk * self.volume
                outdata[:n] = scaled[:, None] if outdata.shape[1] > 1 else scaled.reshape(-1, 1)
            if n < frames:
                outdata[n:] = 0
            self._frame = start + n
            self.frames_delivered += n
        if n < frames:
            raise self._sd.CallbackStop


def make_player(parent: QObject | None = None, *, disabled_reason: str | None = None) -> BasePlayer:
    """A sounddevice :class:`Player`, or a :class:`NullPlayer` saying why audio is unavailable."""
    if disabled_reason:
        return NullPlayer(disabled_reason, parent)
    try:
        import sounddevice
    except (OSError, ImportError) as err:  # PortAudio library missing
        return NullPlayer(f"Audio preview is off: the PortAudio library is missing ({err}).", parent)
    try:
        info = sounddevice.query_devices(kind="output")
        if not info or int(info.get("max_output_channels", 0)) < 1:
            raise ValueError("no output channels")
        return Player(sounddevice, parent=parent)
    except Exception as err:  # noqa: BLE001 - PortAudioError, ValueError, …
        return NullPlayer(f"Audio preview is off: no audio output device was found ({err}).", parent)
