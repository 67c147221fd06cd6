"""Audio preview through sounddevice, behind a factory that falls back to a null player.

``make_player()`` returns a :class:`Player` (a PortAudio callback stream) or, when
PortAudio or an output device is missing, a :class:`NullPlayer` whose
``unavailable_reason`` the window shows once; everything else keeps working.
One song plays at a time; each starts at a sensible point (the shown part's
start, usually the middle of the song) and plays to its end.

Playback streams: a decode thread (``core.playback.AudioFeed``) decodes the song block by
block with the core's ``stream_audio`` at the device's rate and channels into a
bounded ring buffer, and the PortAudio callback drains it. The stream starts as
soon as ``PRIME_SECONDS`` are decoded, so a preview starts in a few tens of
milliseconds whatever the song's length; seeking starts a new feed at the new
point. The callback never waits for the decoder and allocates nothing of size:
an underrun plays silence.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from musicrec_gui.core.playback import DECODE_THREAD_NAME, AudioFeed, clock_text

__all__ = ["STOPPED", "LOADING", "PLAYING", "PAUSED", "BasePlayer", "NullPlayer", "Player", "make_player",
           "clock_text", "DECODE_THREAD_NAME"]

STOPPED, LOADING, PLAYING, PAUSED = "stopped", "loading", "playing", "paused"


class BasePlayer(QObject):
    """What the window needs of a player."""

    stateChanged = Signal(str, object)  # state, key of the song (None when stopped)
    positionChanged = Signal(float)  # seconds in the song
    failed = Signal(str)
    ended = Signal(object)  # key of a song that played to its end (not stopped by the user)

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

    def seek(self, seconds: float) -> None:
        """Go on from ``seconds`` into the song in hand (playing, paused or loading)."""

    def position(self) -> float:
        """Seconds into the song in hand (0.0 when stopped)."""
        return 0.0

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
    """Plays one song at a time through a sounddevice callback ``OutputStream``, streaming from the decoder.

    Parameters
    ----------
    sounddevice_module : module
        ``sounddevice`` (PortAudio initialised).
    device : int, str or None
        Output device; None for the default.
    """

    _primed = Signal(object)  # AudioFeed: its first PRIME_SECONDS are buffered
    _feedFailed = Signal(object)  # AudioFeed: no audio came out of it
    _streamFinished = Signal(int)

    def __init__(self, sounddevice_module, device=None, parent: QObject | None = None):
        super().__init__(parent)
        self._sd = sounddevice_module
        self._device = device
        info = self._sd.query_devices(device, kind="output")
        self.device_name = info.get("name", "")
        self.sample_rate = int(info.get("default_samplerate") or 44100)
        self.channels = 2 if int(info.get("max_output_channels", 1)) >= 2 else 1
        self._token = 0
        self._stream = None
        self._feed: AudioFeed | None = None  # what the callback drains
        self._path = ""
        self._clock = (0.0, 0)  # (monotonic time, frames output) when the stream (re)started
        self._frames_out = 0  # frames handed to the device, silence included (pacing)
        self.frames_delivered = 0  # frames of audio handed to the device (for tests and diagnostics)
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._on_tick)
        self._primed.connect(self._on_primed)
        self._feedFailed.connect(self._on_feed_failed)
        self._streamFinished.connect(self._on_stream_finished)

    # -- control (GUI thread) -----------------------------------------------
    def play(self, key, path: str, start: float = 0.0) -> None:
        self._drop_feed()
        self._close_stream()
        self._token += 1
        token = self._token
        self.key = key
        self._path = path
        self._set_state(LOADING)
        self._start_feed(max(0.0, float(start)))
        try:  # opened while the first blocks decode; started once they are in
            self._stream = self._sd.OutputStream(
                samplerate=self.sample_rate, channels=self.channels, dtype="float32", device=self._device,
                callback=self._callback, finished_callback=lambda t=token: self._emit_finished(t),
            )
        except Exception as err:  # noqa: BLE001 - PortAudio errors of every kind
            self._fail(f"Cannot play: {err}")

    def seek(self, seconds: float) -> None:
        if self.state == STOPPED or self.key is None:
            return
        seconds = max(0.0, float(seconds))
        if self.state == LOADING or self._stream is None:
            self.play(self.key, self._path, seconds)
            return
        self._drop_feed()
        self._start_feed(seconds)  # the callback plays silence for the few ms until it has audio
        self.positionChanged.emit(seconds)

    def _start_feed(self, start: float) -> None:
        feed = AudioFeed(self._path, start, self.sample_rate, self.channels,
                     on_primed=self._emit_signal(self._primed), on_failed=self._emit_signal(self._feedFailed))
        self._feed = feed
        feed.start()

    def _emit_signal(self, signal):
        def emit(feed) -> None:
            try:
                signal.emit(feed)
            except RuntimeError:  # the player is gone (window closed)
                pass
        return emit

    def _drop_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.cancel.set()  # its thread ends within one decoded block

    @Slot(object)
    def _on_primed(self, feed: AudioFeed) -> None:
        if feed is not self._feed or self.state != LOADING or self._stream is None:
            return
        try:
            self._clock = (time.monotonic(), self._frames_out)
            self._stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudio errors of every kind
            self._fail(f"Cannot play: {err}")
            return
        self._set_state(PLAYING)
        self._timer.start()

    @Slot(object)
    def _on_feed_failed(self, feed: AudioFeed) -> None:
        if feed is self._feed:
            self._fail(f"Cannot play this song: {feed.error or 'no audio came out of it'}")

    def _fail(self, message: str) -> None:
        self._drop_feed()
        self._close_stream()
        self._token += 1
        self.key = None
        self._set_state(STOPPED)
        self.failed.emit(message)

    def pause(self) -> None:
        if self.state == PLAYING and self._stream is not None:
            self._stream.stop()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state == PAUSED and self._stream is not None:
            self._clock = (time.monotonic(), self._frames_out)
            self._stream.start()
            self._set_state(PLAYING)
            self._timer.start()

    def stop(self) -> None:
        self._token += 1
        self._drop_feed()
        self._close_stream()
        if self.state != STOPPED:
            self.key = None
            self._set_state(STOPPED)

    def close(self) -> None:
        feed = self._feed
        self.stop()
        if feed is not None:
            feed.thread.join(timeout=1.0)

    def position(self) -> float:
        feed = self._feed
        return feed.position() if feed is not None else 0.0

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
        if token != self._token or self.state != PLAYING:
            return  # stopped, paused or replaced meanwhile
        feed = self._feed
        self._timer.stop()
        self.positionChanged.emit(self.position())
        error = feed.error if feed is not None else ""
        if error:
            at = clock_text(feed.position())
            self._fail(f"Playback stopped at {at}: {error}")
        else:
            key = self.key
            self.stop()
            self.ended.emit(key)

    # -- audio thread ---------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status) -> None:
        # A real device pulls at its own pace; a device that pulls faster than real time
        # (ALSA's null device, some virtual sinks) is paced here so the position stays true.
        # On a real device this never sleeps.
        t0, f0 = self._clock
        ahead = (self._frames_out - f0) / self.sample_rate - (time.monotonic() - t0)
        if ahead > 0.3:
            time.sleep(min(ahead - 0.25, 0.05))
        self._frames_out += frames
        feed = self._feed
        if feed is None:
            outdata.fill(0)
            return
        done = feed.done  # read before taking: if set, every frame is already in the buffer
        n = feed.take(outdata, self.volume)
        if n < frames:
            outdata[n:] = 0  # an underrun plays silence
        self.frames_delivered += n
        if n < frames and done:
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
