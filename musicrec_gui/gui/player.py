"""Audio preview through sounddevice, behind a factory that falls back to a null player.

``make_player()`` returns a :class:`Player` (a PortAudio callback stream) or, when
PortAudio or an output device is missing, a :class:`NullPlayer` whose
``unavailable_reason`` the window shows once; everything else keeps working.
One song plays at a time; each starts at a sensible point (the shown part's
start, usually the middle of the song) and plays to its end.

Playback streams: a decode thread (:class:`_Feed`) decodes the song block by
block with the core's ``stream_audio`` at the device's rate and channels into a
bounded ring buffer, and the PortAudio callback drains it. The stream starts as
soon as ``PRIME_SECONDS`` are decoded, so a preview starts in a few tens of
milliseconds whatever the song's length; seeking starts a new feed at the new
point. The callback never waits for the decoder and allocates nothing of size:
an underrun plays silence.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from musicrec_gui.core.audio import DecodeCancelled, stream_audio
from musicrec_gui.core.errors import MusicrecError

STOPPED, LOADING, PLAYING, PAUSED = "stopped", "loading", "playing", "paused"
# The stream starts once this much is decoded: enough to ride out a busy machine's first hiccup.
PRIME_SECONDS = 0.12
# The ring buffer between the decode thread and the audio callback.
BUFFER_SECONDS = 2.0
# Native frames per decoded block: about 0.1 s, so the first block (and a cancel) comes quickly.
DECODE_BLOCK_FRAMES = 4096
DECODE_THREAD_NAME = "musicrec-playback-decode"


def clock_text(seconds: float) -> str:
    """"1:23", or "1:02:03" from an hour on."""
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Feed:
    """One song decoded from one point into a ring buffer: a decode thread writes, the audio callback reads.

    A single writer and a single reader share the buffer through two frame counters
    (``written`` and ``read``, each advanced by its owner only after the frames are copied),
    so neither side takes a lock. The writer waits (polling) while the buffer is full.

    Parameters
    ----------
    path : str
    offset : float
        Seconds into the song of the first frame.
    sample_rate, channels : int
        The device's.
    on_primed : callable(_Feed)
        Called from the decode thread once ``PRIME_SECONDS`` are buffered (or the song ended sooner).
    on_failed : callable(_Feed)
        Called from the decode thread when the song failed before any audio came out.
    """

    def __init__(self, path: str, offset: float, sample_rate: int, channels: int, on_primed, on_failed):
        self.path, self.offset, self.sample_rate = path, float(offset), sample_rate
        self.capacity = int(BUFFER_SECONDS * sample_rate)
        self.ring = np.zeros((self.capacity, channels), dtype=np.float32)
        self.written = 0  # frames written in all, by the decode thread
        self.read = 0  # frames read in all, by the audio callback
        self.done = False  # the decoder has stopped: end of song or an error
        self.error = ""  # why it stopped early, for the user
        self.cancel = threading.Event()
        self._prime = int(PRIME_SECONDS * sample_rate)
        self._on_primed, self._on_failed = on_primed, on_failed
        self.thread = threading.Thread(target=self._run, name=DECODE_THREAD_NAME, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def position(self) -> float:
        """Seconds into the song of the next frame the device gets."""
        return self.offset + self.read / self.sample_rate

    # -- decode thread -----------------------------------------------------------------------
    def _run(self) -> None:
        primed = False
        blocks = stream_audio(self.path, sample_rate=self.sample_rate, offset=self.offset,
                              channels=self.ring.shape[1], block_frames=DECODE_BLOCK_FRAMES, cancel=self.cancel)
        try:
            for block in blocks:
                done = 0
                while done < len(block):
                    if self.cancel.is_set():
                        return
                    free = self.capacity - (self.written - self.read)
                    if free <= 0:
                        self.cancel.wait(0.02)  # the callback drains about 1/50 of the buffer meanwhile
                        continue
                    n = min(free, len(block) - done)
                    self._put(block[done:done + n])
                    done += n
                if not primed and self.written >= self._prime:
                    primed = True
                    self._on_primed(self)
        except DecodeCancelled:
            return
        except MusicrecError as err:
            self.error = str(err)
        except Exception as err:  # noqa: BLE001 - said to the user; the app goes on
            self.error = f"decoding failed ({type(err).__name__}: {err})"
        finally:
            blocks.close()
            self.done = True
        if self.cancel.is_set():
            return
        if primed:
            return
        if self.written == 0:
            self._on_failed(self)
        else:
            self._on_primed(self)  # a song shorter than the priming, or one that broke early: play what there is

    def _put(self, block: np.ndarray) -> None:
        n, at = len(block), self.written % self.capacity
        first = min(n, self.capacity - at)
        self.ring[at:at + first] = block[:first]
        if n > first:
            self.ring[:n - first] = block[first:]
        self.written += n

    # -- audio callback ---------------------------------------------------------------------
    def take(self, out: np.ndarray, volume: float) -> int:
        """Copy up to ``len(out)`` buffered frames into ``out``, scaled by ``volume``; returns how many."""
        n = min(self.written - self.read, len(out))
        if n <= 0:
            return 0
        at = self.read % self.capacity
        first = min(n, self.capacity - at)
        np.multiply(self.ring[at:at + first], volume, out=out[:first])
        if n > first:
            np.multiply(self.ring[:n - first], volume, out=out[first:n])
        self.read += n
        return n


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

    _primed = Signal(object)  # _Feed: its first PRIME_SECONDS are buffered
    _feedFailed = Signal(object)  # _Feed: no audio came out of it
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
        self._feed: _Feed | None = None  # what the callback drains
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
        feed = _Feed(self._path, start, self.sample_rate, self.channels,
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
    def _on_primed(self, feed: _Feed) -> None:
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
    def _on_feed_failed(self, feed: _Feed) -> None:
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
            self.stop()

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
