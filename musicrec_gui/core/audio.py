"""Finding, decoding and tagging audio files. Read-only: nothing here writes to a music file.

Decoders: libsndfile (through ``soundfile``) reads WAV, AIFF, FLAC, Ogg Vorbis
and Opus with sample-accurate seeking; everything else (MP3, AAC/ALAC in MP4,
WMA, …) and anything libsndfile refuses goes to FFmpeg's decoders through
PyAV, whose wheels carry FFmpeg, so users need no system binaries.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.names import display_text

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".wave", ".aif", ".aiff", ".aifc",
     ".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".wv", ".ape", ".mka", ".webm"}
)
# libsndfile handles these natively; others skip straight to FFmpeg. MP3 goes to FFmpeg too:
# libsndfile's mpg123 prints resync notes straight to stderr on damaged files.
_SOUNDFILE_EXTENSIONS = frozenset({".flac", ".ogg", ".oga", ".opus", ".wav", ".wave", ".aif", ".aiff", ".aifc"})
# Beyond these the file is more likely garbage than audio; refusing early bounds memory.
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 768_000
# Full-track analysis stops here: a 3-hour DJ mix is analysed by its first 3 hours.
MAX_DECODE_SECONDS = 3 * 3600.0
# A healthy file decodes in well under a second per minute of audio on a slow machine.
DECODE_TIME_LIMIT = 60.0


class AudioError(MusicrecError):
    """A file could not be decoded as audio. The message says why, for the user.

    ``kind`` sorts the reason: ``timeout``, ``vanished`` and ``changed`` are tried again by
    the next scan; ``empty``, ``not_audio``, ``unreadable``, ``too_large`` are kept until
    the file changes.
    """

    def __init__(self, message: str, *, kind: str = "not_audio"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Tags:
    title: str
    artist: str
    album: str
    duration: float  # seconds; 0.0 when unknown


def is_audio_path(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in AUDIO_EXTENSIONS


def find_audio_files(
    folder: str | os.PathLike, *, on_error: Callable[[str, str], None] | None = None
) -> Iterator[str]:
    """Yield audio files below ``folder``, recursively, in a stable order.

    Symbolic links to directories are not followed (a link loop cannot trap the
    walk); hidden files and folders are skipped. Folders that cannot be read
    are reported through ``on_error(path, reason)`` and skipped.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"Music folder {folder!r} does not exist or is not a folder.")

    def _report(err: OSError) -> None:
        if on_error is not None:
            on_error(err.filename or folder, err.strerror or str(err))

    for root, dirs, files in os.walk(folder, onerror=_report, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and is_audio_path(name):
                yield os.path.join(root, name)


def probe_duration(path: str) -> float:
    """Length of the audio in seconds without decoding it (0.0 if it cannot be told)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _SOUNDFILE_EXTENSIONS:
        try:
            import soundfile

            with open(path, "rb") as raw, soundfile.SoundFile(raw) as handle:
                if handle.samplerate > 0 and handle.frames > 0:
                    return handle.frames / handle.samplerate
        except Exception:  # noqa: BLE001 - fall through to FFmpeg's demuxer
            pass
    try:
        import av

        with av.open(path) as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001
        pass
    return 0.0


def check_readable_file(path: str) -> None:
    """Raise :class:`AudioError` unless ``path`` is a non-empty regular file we may read.

    Checked before any decoder opens the file: opening a FIFO named like a song would block forever.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AudioError("the file has disappeared (moved or deleted during the scan)", kind="vanished") from None
    except OSError as err:
        raise AudioError(f"cannot read the file: {err.strerror or err}", kind="unreadable") from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioError("not a regular file (a folder, pipe or device named like a song)", kind="unreadable")
    if info.st_size == 0:
        raise AudioError("the file is empty (0 bytes)", kind="empty")
    if not os.access(path, os.R_OK):
        raise AudioError("permission denied: the file is not readable by this user", kind="unreadable")


def analysis_window(duration: float, settings: AnalysisSettings) -> tuple[float, float | None]:
    """(offset, length) in seconds of the part of a song that is analysed."""
    if settings.mode == "full" or duration <= 0:
        return 0.0, None
    length = settings.excerpt_seconds
    return max(0.0, (duration - length) / 2.0), length


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int = 22050,
    offset: float = 0.0,
    duration: float | None = None,
    time_limit: float | None = DECODE_TIME_LIMIT,
) -> np.ndarray:
    """Decode (part of) a file to mono float32.

    Parameters
    ----------
    path : str or PathLike
    sample_rate : int
        Output rate; the audio is resampled with soxr.
    offset : float
        Start, in seconds. Formats that can seek decode only the requested part.
    duration : float or None
        Length in seconds, or None for the rest of the file (at most ``MAX_DECODE_SECONDS``).
    time_limit : float or None
        Give up after this many seconds of decoding (a damaged file can make a decoder
        crawl); checked between blocks.

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32

    Raises
    ------
    AudioError
        With a message fit for the user: unreadable, not audio, empty, ….
    """
    path = os.fspath(path)
    check_readable_file(path)
    duration = MAX_DECODE_SECONDS if duration is None else min(duration, MAX_DECODE_SECONDS)
    ext = os.path.splitext(path)[1].lower()
    if ext in _SOUNDFILE_EXTENSIONS:
        try:
            native, native_rate = _read_soundfile(path, offset, duration, _deadline(time_limit))
        except AudioError:
            raise
        except Exception:  # noqa: BLE001 - libsndfile refused it; FFmpeg may still know it
            pass
        else:
            return _finish(native, native_rate, sample_rate)
    try:
        return _read_ffmpeg(path, offset, duration, sample_rate, _deadline(time_limit))
    except AudioError:
        raise
    except Exception as err:  # noqa: BLE001
        # FFmpeg's complaint is the more telling one; libsndfile's often blames the path.
        raise AudioError(f"not a readable audio file ({_describe(err, path)})") from err


def load_for_analysis(
    path: str | os.PathLike, *, settings: AnalysisSettings = AnalysisSettings(), sample_rate: int = 22050
) -> tuple[np.ndarray, float, float]:
    """Decode the part of a song that ``settings`` asks for.

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,)], float32
    offset : float
        Start of the decoded part in the song, in seconds.
    duration : float
        Length of the whole song in seconds (0.0 if unknown).
    """
    path = os.fspath(path)
    check_readable_file(path)
    total = probe_duration(path)
    offset, length = analysis_window(total, settings)
    audio = load_audio(path, sample_rate=sample_rate, offset=offset, duration=length)
    if total <= 0:
        total = audio.size / sample_rate
    return audio, offset, total


def _deadline(time_limit: float | None) -> float:
    return time.monotonic() + time_limit if time_limit else float("inf")


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise AudioError("decoding ran past its time limit; the file is probably damaged", kind="timeout")


def _read_soundfile(path: str, offset: float, duration: float, deadline: float) -> tuple[np.ndarray, int]:
    import soundfile

    # A file object, not the path: libsndfile cannot open names that are not valid UTF-8.
    with open(path, "rb") as raw, soundfile.SoundFile(raw) as handle:
        _check_format(handle.samplerate, handle.channels)
        start = int(round(offset * handle.samplerate))
        if start and handle.seekable():
            handle.seek(min(start, max(handle.frames - 1, 0)))
        elif start:
            handle.read(start, dtype="float32", always_2d=True)  # no seeking: decode and discard
        remaining = int(round(duration * handle.samplerate))
        block = 1 << 18
        chunks = []
        while remaining > 0:
            _check_deadline(deadline)
            data = handle.read(min(block, remaining), dtype="float32", always_2d=True)
            if not len(data):
                break
            chunks.append(data.mean(axis=1))
            remaining -= len(data)
        mono = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return mono, handle.samplerate


def _read_ffmpeg(path: str, offset: float, duration: float, sample_rate: int, deadline: float) -> np.ndarray:
    import av

    chunks: list[np.ndarray] = []
    wanted = int(round(duration * sample_rate))
    got = 0
    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise AudioError("the file holds no audio stream")
        stream = container.streams.audio[0]
        _check_format(stream.codec_context.sample_rate or 0, stream.codec_context.channels or 1)
        if offset > 0 and stream.time_base:
            try:
                container.seek(int(offset / stream.time_base), stream=stream, any_frame=False, backward=True)
            except av.error.FFmpegError:
                pass  # not seekable: decode from the start and skip below
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        skip_until = offset
        for frame in container.decode(stream):
            _check_deadline(deadline)
            if frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
                end = start + frame.samples / (frame.sample_rate or sample_rate)
                if end <= skip_until:
                    continue
                drop = max(0, int(round((skip_until - start) * sample_rate)))
            else:
                drop = 0
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1)
                if drop:
                    pcm, drop = pcm[drop:], max(0, drop - pcm.size)
                chunks.append(pcm)
                got += pcm.size
            skip_until = 0.0
            if got >= wanted:
                break
        else:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    audio = audio[:wanted]
    return _finish(audio, sample_rate, sample_rate)


def _finish(audio: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    if audio.size == 0:
        raise AudioError("the file holds no audio samples")
    audio = np.nan_to_num(audio.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    if rate != sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(audio)


def _check_format(sample_rate: int, channels: int) -> None:
    if not 1000 <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"implausible sample rate {sample_rate} Hz (expected 1 kHz to {MAX_SAMPLE_RATE // 1000} kHz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"implausible channel count {channels} (expected 1 to {MAX_CHANNELS})")


def _describe(err: Exception, path: str = "") -> str:
    text = str(err).strip() or type(err).__name__
    if path:
        text = text.replace(f": '{path}'", "").replace(path, "the file")
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text.splitlines()[0][:200]


def read_tags(path: str | os.PathLike) -> Tags:
    """Title, artist, album and duration from the file's tags (opened read-only).

    Missing tags fall back to the file name for the title and to empty strings.
    Never raises for bad tags: tag trouble must not stop a song from being analysed.
    """
    path = os.fspath(path)
    title = artist = album = ""
    duration = 0.0
    try:
        import mutagen

        meta = mutagen.File(path, easy=True)
        if meta is not None:
            title = _first(meta.get("title"))
            artist = _first(meta.get("artist")) or _first(meta.get("albumartist"))
            album = _first(meta.get("album"))
            if getattr(meta, "info", None) is not None and getattr(meta.info, "length", None):
                duration = float(meta.info.length)
    except Exception:  # noqa: BLE001 - mutagen raises many types for broken tags
        pass
    if not title:
        title = os.path.splitext(os.path.basename(path))[0]
    return Tags(title=_clean(title), artist=_clean(artist), album=_clean(album), duration=duration)


def _first(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


def _clean(text: str) -> str:
    # Names with undecodable bytes arrive as surrogate escapes; show them, do not crash on them.
    return display_text(text).strip()
