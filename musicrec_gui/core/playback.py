"""Feeding an audio device from a decoder: a ring buffer filled by a decode thread, drained by a callback.

No Qt here: the app's player (``gui/player.py``) wraps this in a PortAudio stream.
"""

from __future__ import annotations

import threading

import numpy as np

from musicrec_gui.core.audio import DecodeCancelled, stream_audio
from musicrec_gui.core.errors import MusicrecError

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


class AudioFeed:
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


