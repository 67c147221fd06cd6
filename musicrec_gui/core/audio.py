"""Finding, decoding and tagging audio files. Read-only: nothing here writes to a music file.

Decoders: libsndfile (through ``soundfile``) reads WAV, AIFF, FLAC, Ogg Vorbis
and Opus with sample-accurate seeking; everything else (MP3, AAC/ALAC in MP4,
WMA, …) and anything libsndfile refuses goes to FFmpeg's decoders through
PyAV, whose wheels carry FFmpeg, so users need no system binaries.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, TypeVar

import numpy as np

from musicrec_gui.core import features as features_mod
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.errors import FailureKind, MusicrecError, not_a_file_reason, os_error_reason
from musicrec_gui.core.names import display_text

T = TypeVar("T")

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

    Parameters
    ----------
    message : str
        What happened, for the user ("the file is empty (0 bytes)").
    kind : FailureKind or str
        Why, as one of :class:`~musicrec_gui.core.errors.FailureKind`, decided where the
        error is raised. ``timed_out``, ``vanished`` and ``changed`` are tried again by the
        next scan; the others are kept until the file changes.

    Attributes
    ----------
    kind : FailureKind
    """

    def __init__(self, message: str, *, kind: FailureKind | str = FailureKind.NOT_AUDIO):
        super().__init__(message)
        self.kind = FailureKind.parse(kind)


@dataclass(frozen=True)
class Tags:
    title: str
    artist: str
    album: str
    duration: float  # seconds; 0.0 when unknown


def is_audio_path(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in AUDIO_EXTENSIONS


# Format names for messages, by extension (what the user expects the file to be).
_EXTENSION_FORMATS = {
    ".mp3": "MP3", ".flac": "FLAC", ".ogg": "Ogg", ".oga": "Ogg", ".opus": "Opus", ".wav": "WAV", ".wave": "WAV",
    ".aif": "AIFF", ".aiff": "AIFF", ".aifc": "AIFF", ".m4a": "M4A", ".m4b": "M4B", ".mp4": "MP4", ".aac": "AAC",
    ".alac": "ALAC", ".wma": "WMA", ".wv": "WavPack", ".ape": "Monkey's Audio", ".mka": "Matroska",
    ".webm": "WebM",
}


def extension_format(path: str | os.PathLike) -> str:
    """The audio format a file's name promises, in words ("FLAC"); "audio" for other names."""
    return _EXTENSION_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower(), "audio")


def sniff_format(head: bytes) -> str | None:
    """The audio format that a file's first bytes announce ("FLAC", "Ogg Vorbis", …), or None.

    Only the signature is looked at: a file that announces a format may still be damaged.
    """
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "Opus" if b"OpusHead" in head else "Ogg Vorbis" if b"\x01vorbis" in head else \
            "Ogg FLAC" if b"FLAC" in head[:64] else "Ogg"
    if head[4:8] == b"ftyp":
        return "M4A" if head[8:11] in (b"M4A", b"M4B") else "MP4"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "WMA"
    if head[:4] == b"wvpk":
        return "WavPack"
    if head[:4] == b"MAC ":
        return "Monkey's Audio"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM" if b"webm" in head[:64] else "Matroska"
    if head[:3] == b"ID3":
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        if head[1] & 0x06 == 0:  # MPEG "layer 0": ADTS, AAC without a container
            return "AAC"
        if len(head) < 3 or head[2] >> 4 != 0xF:  # not the forbidden bitrate index
            return "MP3"
    return None


def _format_words(path: str, head: bytes | None = None) -> str:
    """The file's format for a message: what its first bytes say, else what its name says."""
    head = _head(path) if head is None else head
    found, named = sniff_format(head), extension_format(path)
    if found is None or (found == "Ogg" and named in ("Ogg", "Opus")) or (found == "MP4" and named in ("M4A", "M4B")):
        return named if found is None or named != "audio" else found
    return found


def _head(path: str, size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _content_hint(head: bytes) -> str:
    """" (it holds text)" when the bytes are text, " (it is a web page)" for HTML, else ""."""
    sample = head[:2048]
    if not sample or b"\x00" in sample:
        return ""
    text = sample.decode("utf-8", errors="ignore")
    if len(text) < 0.9 * len(sample.decode("latin-1")) or sum(c.isprintable() or c.isspace() for c in text) < 0.95 * len(text):
        return ""
    lowered = text.lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml")) or "<body" in lowered:
        return " (it is a web page)"
    return " (it holds text)"


def promised_seconds(path: str) -> float:
    """How long the file's header says its audio is, in seconds (0.0 when it does not say).

    Decoders report a cut-off WAV by its real length; its ``data`` chunk still says what the
    whole file held. Other formats: FFmpeg's idea of the length (FLAC's stream info, MP3's
    Xing header, AIFF's and MP4's headers), which may itself be an estimate.
    """
    head = _head(path, 1 << 16)
    if sniff_format(head) == "WAV":
        return _wav_promised_seconds(head)
    try:
        import av

        with av.open(path, metadata_errors="ignore") as container:
            if container.duration and container.duration > 0:
                return container.duration / 1_000_000
    except Exception:  # noqa: BLE001 - no promise then
        pass
    return 0.0


def _wav_chunks(head: bytes) -> dict[bytes, tuple[int, bytes]]:
    """The chunks of a RIFF/WAVE header found in ``head``: id → (declared size, the bytes there are)."""
    chunks: dict[bytes, tuple[int, bytes]] = {}
    at = 12
    while at + 8 <= len(head) and len(chunks) < 64:
        ident, size = head[at : at + 4], int.from_bytes(head[at + 4 : at + 8], "little")
        chunks.setdefault(ident, (size, head[at + 8 : at + 8 + size]))
        if ident == b"data":
            break
        at += 8 + size + (size & 1)
    return chunks


def _wav_format(head: bytes) -> tuple[int, int] | None:
    """(sample rate, channels) from a WAV header's ``fmt `` chunk, or None if it has none."""
    fmt = _wav_chunks(head).get(b"fmt ")
    if fmt is None or len(fmt[1]) < 8:
        return None
    body = fmt[1]
    return int.from_bytes(body[4:8], "little"), int.from_bytes(body[2:4], "little")


def _wav_promised_seconds(head: bytes) -> float:
    chunks = _wav_chunks(head)
    fmt, data = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or data is None or len(fmt[1]) < 12:
        return 0.0
    size, byte_rate = data[0], int.from_bytes(fmt[1][8:12], "little")
    # 0 and 0xFFFFFFFF-ish sizes are what streaming writers leave when they cannot go back: no promise.
    if size == 0 or size >= 0xFFFFFF00 or head[:4] == b"RF64" or byte_rate <= 0:
        return 0.0
    return size / byte_rate


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
    except OSError as err:
        raise AudioError(os_error_reason(err, path), kind=_os_failure_kind(err) or FailureKind.UNREADABLE) from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(not_a_file_reason(info.st_mode), kind=FailureKind.UNREADABLE)
    if info.st_size == 0:
        raise AudioError("empty file (0 bytes)", kind=FailureKind.EMPTY)
    if not os.access(path, os.R_OK):
        raise AudioError("cannot be read: permission denied", kind=FailureKind.UNREADABLE)


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
    cancel: Cancel | None = None,
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
    cancel : object with ``is_set()`` (e.g. threading.Event) or None
        Checked between blocks too: once set, :class:`DecodeCancelled` is raised.

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32

    Raises
    ------
    AudioError
        With a message fit for the user: unreadable, not audio, empty, ….
    DecodeCancelled
        ``cancel`` was set.
    """
    path = os.fspath(path)
    check_readable_file(path)
    audio, progress = _load(path, sample_rate, offset, duration, time_limit, cancel)
    if progress.damage:
        _partial(path, offset + audio.size / sample_rate, progress.damage, None)
    return audio


def _load(path: str, sample_rate: int, offset: float, duration: float | None, time_limit: float | None,
          cancel: Cancel | None) -> tuple[np.ndarray, "_Progress"]:
    """:func:`load_audio`, keeping what a decoder got out before an error (``progress.damage`` says so)."""
    duration = MAX_DECODE_SECONDS if duration is None else min(duration, MAX_DECODE_SECONDS)
    progress = _Progress(time_limit, cancel)
    audio = _decode(path, progress, lambda reader: reader.read(offset, duration, sample_rate))
    if audio.size == 0:
        raise _no_samples(path)
    return np.ascontiguousarray(audio, dtype=np.float32), progress


def stream_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int,
    offset: float = 0.0,
    channels: int = 1,
    block_frames: int = 4096,
    time_limit: float | None = None,
    cancel: Cancel | None = None,
) -> Iterator[np.ndarray]:
    """Decode a file block by block from ``offset``, for playback: the first block comes out at once.

    Unlike :func:`load_audio` nothing is decoded ahead of what the caller takes, so a player can
    start after the first block and stop (``close()`` the generator, or set ``cancel``) at any time.

    Parameters
    ----------
    path : str or PathLike
    sample_rate : int
        Output rate (soxr for libsndfile's formats, swresample for FFmpeg's).
    offset : float
        Start, in seconds; both decoders seek to it.
    channels : int
        1 for mono (mixed down), or an output device's channel count: a file with that many
        channels keeps them; any other file is mixed to mono and copied to every channel.
    block_frames : int
        Native-rate frames read per block (libsndfile); FFmpeg yields one block per codec frame.
    time_limit : float or None
        Give up after this many seconds of decoding, as in :func:`load_audio` (None: never; a
        player decodes at the pace of playback).
    cancel : object with ``is_set()`` or None
        Checked between blocks: once set, :class:`DecodeCancelled` is raised.

    Yields
    ------
    np.ndarray [shape=(n, channels)], float32
        Blocks of any length ``n >= 0``, finite values.

    Raises
    ------
    AudioError
        The file cannot be opened or decoded; a file that fails after some blocks came out
        raises ``truncated`` then (the blocks already given stand).
    DecodeCancelled
        ``cancel`` was set.
    """
    path = os.fspath(path)
    check_readable_file(path)
    if channels < 1:
        raise ValueError(f"channels must be at least 1, not {channels}")
    progress = _Progress(time_limit, cancel)
    offset = max(0.0, float(offset))
    yield from _decode_stream(path, progress,
                              lambda reader: reader.stream_from(offset, sample_rate, channels, block_frames))


def load_for_analysis(
    path: str | os.PathLike,
    *,
    settings: AnalysisSettings = AnalysisSettings(),
    sample_rate: int = 22050,
    cancel: Cancel | None = None,
    min_seconds: float = FeatureConfig().slice_seconds,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Decode the excerpt that ``settings`` asks for (excerpt mode only).

    Whole-song mode never decodes a whole song: use :func:`load_song_windows`.

    A file cut off (or damaged) before the end of its excerpt is analysed by what it holds when
    that is at least ``min_seconds`` long (a sentence saying so is appended to ``notes``);
    shorter, it fails as ``truncated``.

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,)], float32
    offset : float
        Start of the decoded part in the song, in seconds.
    duration : float
        Length of the whole song in seconds (0.0 if unknown).
    """
    if settings.mode == "full":
        raise ValueError("whole-song analysis decodes windows, not the song: use load_song_windows()")
    path = os.fspath(path)
    check_readable_file(path)
    total = probe_duration(path)
    offset, length = analysis_window(total, settings)
    end = offset + length if length is not None else None
    try:
        audio, progress = _load(path, sample_rate, offset, length, DECODE_TIME_LIMIT, cancel)
        short = length is not None and audio.size < (length - 0.25) * sample_rate
    except AudioError as err:
        if offset <= 0 or err.kind is not FailureKind.TRUNCATED:
            raise
        audio, progress, short = None, None, True  # cut off before the excerpt begins
    if offset > 0 and (short or progress.damage):
        # The excerpt ran past a cut (or into damage): take the excerpt from what the file holds.
        audio, progress = _load(path, sample_rate, 0.0, end, DECODE_TIME_LIMIT, cancel)
        held = audio.size / sample_rate
        note = _partial(path, held, progress.damage, min_seconds)
        offset, _ = analysis_window(held, settings)
        audio = audio[int(round(offset * sample_rate)):][: int(round(length * sample_rate))]
    else:
        note = ""
        if length is None or short or progress.damage:
            note = _partial(path, offset + audio.size / sample_rate, progress.damage, min_seconds)
        if total <= 0:
            total = audio.size / sample_rate
    if note and notes is not None:
        notes.append(note)
    return np.ascontiguousarray(audio), offset, total


def load_song_windows(
    path: str | os.PathLike,
    *,
    config: FeatureConfig = FeatureConfig(),
    max_slices: int = 64,
    patches: int | None = None,
    time_limit: float | None = DECODE_TIME_LIMIT,
    cancel: Cancel | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, float]:
    """Decode only the audio under the slices whole-song (or spread) analysis uses.

    The slices are those ``features.song_slices(whole_song, max_slices=...)`` keeps
    (``features.window_starts``), each with its FFT context, but memory stays bounded
    whatever the file's length, channels or rate:

    - songs up to twice the span of ``max_slices`` slices (about 6 min for 64) are decoded
      whole at ``config.sample_rate`` (at most 33 MB) and cut; one that turns out longer than
      its header said is handled as one of unknown length;
    - longer ones are read window by window, seeking (libsndfile seeks sample-accurately;
      FFmpeg seeks before the window and skips by timestamps), resampled with the same
      soxr filter and phase as a whole-file decode;
    - when the length cannot be probed, or FFmpeg cannot seek, the file is decoded once as a
      stream, keeping only windows at a slice stride that doubles whenever more than
      ``2 * max_slices`` are held; at the end the ``max_slices`` held windows nearest to the
      even spacing are used (a close approximation: even to within the final stride).

    At most ``MAX_DECODE_SECONDS`` of a song are analysed, as before. Memory: at most
    ``2 * max_slices`` windows (about 34 MB for 64) and one decoded block, whatever the file.

    Parameters
    ----------
    path : str or PathLike
    config : FeatureConfig
        Sample rate and slice geometry.
    max_slices : int
    patches : int or None
        Spread analysis: ``patches`` windows spread evenly over the song
        (``features.spread_window_starts``) instead of whole-song mode's slices.
    time_limit : float or None
        For the whole song (all its windows), as in :func:`load_audio`.
    cancel : object with ``is_set()`` or None
    notes : list of str or None
        A file cut off (its header promised more) or damaged (the decoder stopped on an error) is
        analysed by what could be decoded when that holds at least one slice
        (``config.slice_seconds``, about 3 s); a sentence saying so is appended here. Shorter,
        it fails as ``truncated``.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, features.window_length(config))], float32
        Mono audio at ``config.sample_rate``; ``1 <= n_windows <= max_slices``.
    duration : float
        Length of the whole song in seconds.

    Raises
    ------
    AudioError, DecodeCancelled
        As :func:`load_audio`.
    """
    path = os.fspath(path)
    check_readable_file(path)
    if patches is not None:
        max_slices = patches

    def starts_for(n_samples: int) -> np.ndarray:
        if patches is not None:
            return features_mod.spread_window_starts(n_samples, config=config, patches=patches)
        return features_mod.window_starts(n_samples, config=config, max_slices=max_slices)

    sr = config.sample_rate
    length = features_mod.window_length(config)
    stride = config.slice_frames * config.hop_length
    limit = int(round(MAX_DECODE_SECONDS * sr))
    progress = _Progress(time_limit, cancel)
    total = probe_duration(path)
    short = 2 * max_slices * stride / sr
    need = config.slice_seconds

    def noted(note: str) -> None:
        if note and notes is not None:
            notes.append(note)

    if 0 < total <= short:
        # Capped at twice the bound: a header that understates the length cannot make this unbounded.
        audio, loaded = _load(path, sr, 0.0, 2 * short, time_limit, cancel)
        if audio.size < int(2 * short * sr) - 1:
            noted(_partial(path, audio.size / sr, loaded.damage, need))
            held = audio.size / sr
            return features_mod.cut_windows(audio, starts_for(audio.size), length), \
                (held if held < total - max(0.25, 0.01 * total) else total)
        total = 0.0  # longer than its header says: measure it as a stream
    if total > 0:
        starts = starts_for(min(int(round(total * sr)), limit))
        windows = _decode(path, progress, lambda reader: reader.windows(starts, length, sr))
        if windows is not None:
            if progress.damage:
                noted(f"the {_format_words(path)} file is damaged in places "
                      f"({progress.damage}); the parts that could be decoded were analysed")
            return windows, total

    def streamed(reader: _Reader) -> tuple[dict[int, np.ndarray], int]:
        return _collect_windows(reader.blocks(sr), first=-(config.n_fft // 2), stride=stride, length=length,
                                capacity=2 * max_slices, limit=limit)

    held, n_samples = _decode(path, progress, streamed)
    if n_samples == 0:
        raise _no_samples(path)
    noted(_partial(path, n_samples / sr, progress.damage, need))
    n_full = max(1, (1 + n_samples // config.hop_length) // config.slice_frames)
    wanted = (starts_for(n_samples) + config.n_fft // 2) // stride
    indices = np.array(sorted(i for i in held if i < n_full) or [0])
    nearest = indices[np.abs(indices[None, :] - wanted[:, None]).argmin(axis=1)]
    windows = np.stack([held[i] for i in dict.fromkeys(nearest.tolist())])
    return windows, total if total > 0 else n_samples / sr


class DecodeCancelled(Exception):
    """Decoding stopped because the caller asked (scan cancelled, Ctrl-C): not the file's fault."""


class Cancel(Protocol):
    """What decoders need of a cancellation flag: ``threading.Event`` is one."""

    def is_set(self) -> bool: ...


class _Progress:
    """The deadline and the cancellation flag, checked between blocks of every decoder."""

    def __init__(self, time_limit: float | None, cancel: Cancel | None):
        self.deadline = time.monotonic() + time_limit if time_limit else float("inf")
        self.cancel = cancel
        self.decoded = False  # some audio came out: a later decoder error means damaged or cut-short data
        self.damage = ""  # the decoder's words when it stopped on an error after some audio

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DecodeCancelled("decoding was cancelled")
        if time.monotonic() > self.deadline:
            raise AudioError("the file took too long to decode (it is probably damaged); the next scan tries it again",
                             kind=FailureKind.TIMED_OUT)


# Frames per read: a block stays small even with 64 channels (16 MB as float32), and reads stay few.
_BLOCK_FRAMES = 1 << 16


def _decode(path: str, progress: _Progress, job: Callable[["_Reader"], T]) -> T:
    """Run ``job`` with libsndfile when it knows the format, else (or if it refuses) with FFmpeg.

    A failure is an :class:`AudioError` whose kind says where it happened: the file could not
    be opened (``vanished``, ``unreadable``), no decoder knows it or none got any audio out of
    it (``not_audio``), or a decoder knew the format or had decoded part of it, then failed
    (``truncated``: cut short or damaged).
    """
    ext = os.path.splitext(path)[1].lower()
    head = _head(path, 1 << 16)
    if sniff_format(head) == "WAV":
        wav = _wav_format(head)  # decoders disagree on absurd WAV headers; say the same for all
        if wav is not None:
            try:
                _check_format(*wav)
            except _ImpossibleFormat as err:
                raise _impossible(path, str(err)) from None
    try:
        return _decode_with(path, ext, progress, job)
    except _ImpossibleFormat as err:
        raise _impossible(path, str(err)) from None


def _decode_with(path: str, ext: str, progress: _Progress, job: Callable[["_Reader"], T]) -> T:
    known_format = False  # libsndfile recognised the file's header
    if ext in _SOUNDFILE_EXTENSIONS:
        try:
            import soundfile

            # A file object, not the path: libsndfile cannot open names that are not valid UTF-8.
            with open(path, "rb") as raw, soundfile.SoundFile(raw) as handle:
                known_format = True
                reader = _SoundfileReader(handle, progress)
                return job(reader)
        except (AudioError, DecodeCancelled, _ImpossibleFormat):
            raise
        except Exception:  # noqa: BLE001 - libsndfile refused it; FFmpeg may still know it
            pass
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as err:  # noqa: BLE001
        # FFmpeg's complaint is the more telling one; libsndfile's often blames the path.
        raise _undecodable(path, err, known_format or progress.decoded) from err
    try:
        with container:
            return job(_FfmpegReader(container, progress))
    except (AudioError, DecodeCancelled, _ImpossibleFormat):
        raise
    except Exception as err:  # noqa: BLE001 - FFmpeg opened it, then failed inside its data
        raise _undecodable(path, err, known_format or progress.decoded) from err


def _decode_stream(path: str, progress: _Progress,
                   job: Callable[["_Reader"], Iterator[np.ndarray]]) -> Iterator[np.ndarray]:
    """:func:`_decode` for a generator: the file stays open while blocks are taken.

    As there, libsndfile goes first and FFmpeg takes over if it refuses the file, but only
    until a block has come out: a later failure is the file's (``truncated``).
    """
    ext = os.path.splitext(path)[1].lower()
    known_format = False
    given = False
    if ext in _SOUNDFILE_EXTENSIONS:
        try:
            import soundfile

            with open(path, "rb") as raw, soundfile.SoundFile(raw) as handle:
                known_format = True
                for block in job(_SoundfileReader(handle, progress)):
                    given = True
                    yield block
                return
        except (AudioError, DecodeCancelled):
            raise
        except Exception as err:  # noqa: BLE001 - before any block, FFmpeg may still know the file
            if given:
                raise AudioError(f"the file is damaged part way ({_describe(err, path)})",
                                 kind=FailureKind.TRUNCATED) from err
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as err:  # noqa: BLE001
        raise _undecodable(path, err, known_format or progress.decoded) from err
    try:
        with container:
            yield from job(_FfmpegReader(container, progress))
    except (AudioError, DecodeCancelled):
        raise
    except Exception as err:  # noqa: BLE001 - FFmpeg opened it, then failed inside its data
        raise _undecodable(path, err, known_format or progress.decoded) from err


def _os_failure_kind(err: BaseException) -> FailureKind | None:
    """``vanished`` or ``unreadable`` for an operating-system error (PyAV's carry an errno); else None."""
    number = getattr(err, "errno", None)
    if isinstance(err, FileNotFoundError) or number == errno.ENOENT:
        return FailureKind.VANISHED
    if isinstance(err, OSError) and isinstance(number, int) and number > 0:
        return FailureKind.UNREADABLE  # permission denied, an I/O error, a folder
    return None


class _Reader(Protocol):
    def read(self, offset: float, duration: float, sample_rate: int) -> np.ndarray: ...

    def windows(self, starts: np.ndarray, length: int, sample_rate: int) -> np.ndarray | None: ...

    def blocks(self, sample_rate: int) -> Iterator[np.ndarray]: ...

    def stream_from(self, offset: float, sample_rate: int, channels: int, block_frames: int) -> Iterator[np.ndarray]: ...


class _SoundfileReader:
    """libsndfile: sample-accurate seeking; multichannel audio is mixed down block by block."""

    def __init__(self, handle, progress: _Progress):
        _check_format(handle.samplerate, handle.channels)
        self.handle = handle
        self.progress = progress
        self.rate = handle.samplerate

    def _seek(self, frame: int) -> None:
        handle = self.handle
        if handle.seekable():
            handle.seek(min(frame, max(handle.frames - 1, 0)))
        elif frame:
            for _ in self._native(frame):  # no seeking: decode and discard
                pass

    def _native(self, frames: int) -> Iterator[np.ndarray]:
        """Up to ``frames`` frames from the current position as native-rate mono blocks."""
        remaining = frames
        while remaining > 0:
            self.progress.check()
            data = self.handle.read(min(_BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
            if not len(data):
                return
            remaining -= len(data)
            self.progress.decoded = True
            yield np.nan_to_num(_mix_down(data), nan=0.0, posinf=0.0, neginf=0.0)

    def _resampled(self, frames: int, sample_rate: int) -> Iterator[np.ndarray]:
        if self.rate == sample_rate:
            yield from self._native(frames)
            return
        import soxr

        # Streaming gives the same samples as resampling the concatenation at once (checked in the
        # tests), without ever holding the native-rate audio of the whole part.
        stream = soxr.ResampleStream(self.rate, sample_rate, 1, dtype="float32", quality="HQ")
        for block in self._native(frames):
            yield stream.resample_chunk(block)
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)

    def read(self, offset: float, duration: float, sample_rate: int) -> np.ndarray:
        self._seek(int(round(offset * self.rate)))
        return _concat(self._resampled(int(round(duration * self.rate)), sample_rate))

    def blocks(self, sample_rate: int) -> Iterator[np.ndarray]:
        self._seek(0)
        return self._resampled(int(round(MAX_DECODE_SECONDS * self.rate)), sample_rate)

    def stream_from(self, offset: float, sample_rate: int, channels: int, block_frames: int) -> Iterator[np.ndarray]:
        """Blocks [shape=(n, channels)] from ``offset`` to the end (see :func:`stream_audio`)."""
        self._seek(int(round(offset * self.rate)))
        keep = self.handle.channels == channels  # else mono, copied to every channel
        width = channels if keep else 1
        resampler = None
        if self.rate != sample_rate:
            import soxr

            resampler = soxr.ResampleStream(self.rate, sample_rate, width, dtype="float32", quality="HQ")
        limit = int(round(MAX_DECODE_SECONDS * self.rate))
        while limit > 0:
            self.progress.check()
            data = self.handle.read(min(block_frames, limit), dtype="float32", always_2d=True)
            if not len(data):
                break
            limit -= len(data)
            self.progress.decoded = True
            block = data if keep else _mix_down(data)[:, None]
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
            if resampler is not None:
                block = resampler.resample_chunk(np.ascontiguousarray(block))
            yield _widen(block, channels)
        if resampler is not None:
            yield _widen(resampler.resample_chunk(np.zeros((0, width), np.float32), last=True), channels)

    def windows(self, starts: np.ndarray, length: int, sample_rate: int) -> np.ndarray | None:
        if not self.handle.seekable():
            return None
        import soxr

        frames, rate = self.handle.frames, self.rate
        out = np.zeros((len(starts), length), dtype=np.float32)
        # Whole-file resampling maps native frame u*q onto output sample u*p exactly; starting each
        # window's read on such a frame keeps the filter's phase, so a window matches the same
        # samples of a whole-file decode. The margin lets the filter settle before and after.
        g = math.gcd(rate, sample_rate)
        q, p = rate // g, sample_rate // g
        margin_units = -(-int(0.05 * rate) // q) if rate != sample_rate else 0
        for row, start in zip(out, starts.tolist()):
            unit0 = start // p - margin_units
            unit1 = -(-(start + length) // p) + margin_units
            lo, hi = unit0 * q, unit1 * q  # native frames to read, zeros outside the file
            native = np.zeros(hi - lo, dtype=np.float32)
            a, b = max(lo, 0), min(hi, frames)
            if b > a:
                self.handle.seek(a)
                got = _concat(self._native(b - a))
                native[a - lo : a - lo + got.size] = got
            if rate != sample_rate:
                native = soxr.resample(native, rate, sample_rate, quality="HQ")
            piece = native[start - unit0 * p : start - unit0 * p + length]
            row[: piece.size] = piece
        return out


class _FfmpegReader:
    """FFmpeg through PyAV: resampled to mono by swresample as frames are decoded."""

    # Decode from this long before a seek target: MP3 frames borrow bits from earlier frames,
    # and the resampler needs a few samples to settle.
    PREROLL_SECONDS = 0.5

    def __init__(self, container, progress: _Progress):
        if not container.streams.audio:
            raise _ImpossibleFormat("no sound at all (no audio stream)")
        self.container = container
        self.stream = container.streams.audio[0]
        self.progress = progress
        _check_format(self.stream.codec_context.sample_rate or 0, self.stream.codec_context.channels or 0)
        # Timestamp of the song's first sample: MP3 starts after the encoder delay (about 25 ms), and
        # decoding from the start drops it, so window positions are counted from here.
        start, base = self.stream.start_time, self.stream.time_base
        self.origin = float(start * base) if start is not None and base and start > 0 else 0.0

    def _seek(self, seconds: float) -> bool:
        import av

        if seconds <= 0:
            seconds = 0.0
        if not self.stream.time_base:
            return seconds == 0.0
        try:
            self.container.seek(int(seconds / self.stream.time_base), stream=self.stream, any_frame=False,
                                backward=True)
        except av.error.FFmpegError:
            return False
        return True

    def _from(self, skip_until: float, sample_rate: int, stereo: bool = False) -> Iterator[np.ndarray]:
        """Blocks from the current position, dropping what lies before ``skip_until`` seconds.

        Mono [shape=(n,)], or with ``stereo`` [shape=(n, 2)].
        """
        import av

        resampler = av.AudioResampler(format="flt", layout="stereo" if stereo else "mono", rate=sample_rate)

        def shape(pcm: np.ndarray) -> np.ndarray:
            return np.nan_to_num(pcm.reshape(-1, 2) if stereo else pcm.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)

        for frame in self._frames():
            self.progress.check()
            self.progress.decoded = True
            if frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
                end = start + frame.samples / (frame.sample_rate or sample_rate)
                if end <= skip_until:
                    continue
                drop = max(0, int(round((skip_until - start) * sample_rate)))
            else:
                drop = 0
            for out in resampler.resample(frame):
                pcm = shape(out.to_ndarray())
                if drop:
                    pcm, drop = pcm[drop:], max(0, drop - len(pcm))
                yield pcm
            skip_until = 0.0
        for out in resampler.resample(None):
            yield shape(out.to_ndarray())

    def _frames(self):
        """Decoded frames; a decoder error after the first frame ends them (noted in ``progress.damage``)."""
        import av

        frames = self.container.decode(self.stream)
        got = False
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except av.error.FFmpegError as err:
                if not got or _os_failure_kind(err) is not None:
                    raise
                self.progress.damage = _describe(err)  # cut off or damaged here: keep what came out
                return
            got = True
            yield frame

    def read(self, offset: float, duration: float, sample_rate: int) -> np.ndarray:
        if offset > 0:
            self._seek(offset)  # if it cannot seek, it decodes from the start and skips
        return _concat(self._from(offset, sample_rate), int(round(duration * sample_rate)))

    def blocks(self, sample_rate: int) -> Iterator[np.ndarray]:
        return self._from(0.0, sample_rate)

    def stream_from(self, offset: float, sample_rate: int, channels: int, block_frames: int) -> Iterator[np.ndarray]:
        """Blocks [shape=(n, channels)] from ``offset`` to the end (see :func:`stream_audio`)."""
        if offset > 0:
            self._seek(offset)  # if it cannot seek, it decodes from the start and skips
        limit = int(round(MAX_DECODE_SECONDS * sample_rate))
        stereo = channels == 2 and self.stream.codec_context.channels == 2  # else mono, copied to each channel
        for block in self._from(offset, sample_rate, stereo):
            block = _widen(block, channels)[:limit]
            limit -= len(block)
            yield block
            if limit <= 0:
                return

    def windows(self, starts: np.ndarray, length: int, sample_rate: int) -> np.ndarray | None:
        out = np.zeros((len(starts), length), dtype=np.float32)
        for i, (row, start) in enumerate(zip(out, starts.tolist())):
            lead = max(0, -start)  # the first window starts before the song: silence
            seconds = self.origin + (start + lead) / sample_rate
            if i == 0 and seconds - self.PREROLL_SECONDS <= self.origin:
                pass  # the container is still at the start: decode as a whole-file decode would
            elif not self._seek(seconds - self.PREROLL_SECONDS):
                return None  # decoding from the start once per window would be quadratic: stream instead
            piece = _concat(self._from(seconds, sample_rate), length - lead)
            row[lead : lead + piece.size] = piece
        return out


def _mix_down(data: np.ndarray) -> np.ndarray:
    """Mono as ``data.mean(axis=1)`` of float32 frames [shape=(n, channels)], bit for bit.

    Mono and stereo take a shortcut: numpy's reduction along the short axis of a C-ordered
    array is about 100 times slower than adding two columns, and cost about 15 % of decoding.
    """
    if data.shape[1] == 1:
        return data[:, 0].copy()
    if data.shape[1] == 2:
        return (data[:, 0] + data[:, 1]) * np.float32(0.5)  # float32 (a + b) / 2, as mean computes it
    return data.mean(axis=1)


def _widen(block: np.ndarray, channels: int) -> np.ndarray:
    """Frames [shape=(n, 1) or (n, channels)] as float32 [shape=(n, channels)] (mono copied to each)."""
    block = block.astype(np.float32, copy=False)
    if block.ndim == 1:
        block = block[:, None]
    if block.shape[1] == channels:
        return block
    return np.repeat(block[:, :1], channels, axis=1)


def _concat(blocks: Iterator[np.ndarray], limit: int | None = None) -> np.ndarray:
    """Join blocks, stopping (and closing the decoder's generator) after ``limit`` samples."""
    chunks, got = [], 0
    try:
        for block in blocks:
            if limit is not None and got + block.size >= limit:
                chunks.append(block[: limit - got])
                got = limit
                break
            chunks.append(block)
            got += block.size
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def _collect_windows(
    blocks: Iterator[np.ndarray], *, first: int, stride: int, length: int, capacity: int, limit: int
) -> tuple[dict[int, np.ndarray], int]:
    """Keep evenly strided windows of a stream of unknown length in bounded memory.

    Window ``i`` is samples ``first + i * stride`` to that plus ``length`` (zeros outside the
    stream). Only windows whose index is a multiple of ``k`` are kept; when more than
    ``capacity`` are held, every other one is dropped and ``k`` doubles, so at most
    ``capacity`` windows (and one block) are ever held.

    Returns
    -------
    held : dict[int, np.ndarray [shape=(length,)]]
        Window index → window, for every kept window that starts before the end.
    n_samples : int
        Length of the stream (at most ``limit``).
    """
    held: dict[int, np.ndarray] = {}
    k = 1
    index = 0
    buf = np.zeros(max(0, -first), dtype=np.float32)  # buf[0] is sample buf_at of the stream
    buf_at = min(0, first)
    n = 0

    def take(available_to: int) -> None:
        nonlocal index, k, buf, buf_at
        while first + index * stride + length <= available_to:
            if index % k == 0:
                at = first + index * stride - buf_at
                held[index] = buf[at : at + length].copy()
                if len(held) > capacity:
                    for i in [i for i in held if i % (2 * k)]:
                        del held[i]
                    k *= 2
            index += 1
        drop = first + index * stride - buf_at
        if drop > 0:
            buf, buf_at = buf[drop:], buf_at + drop

    for block in blocks:
        block = block[: limit - n]
        n += block.size
        buf = np.concatenate([buf, block.astype(np.float32, copy=False)])
        take(buf_at + buf.size)
        if n >= limit:
            break
    close = getattr(blocks, "close", None)
    if close is not None:
        close()
    # The end: windows that start before it are padded with silence, as in a whole-song decode.
    buf = np.concatenate([buf, np.zeros(length, dtype=np.float32)])
    take(min(buf_at + buf.size, n + length))
    for i in [i for i in held if first + i * stride >= max(n, 1)]:
        del held[i]
    return held, n


# A file that decodes to nothing yet is bigger than this holds more than a header: it is damaged.
_HEADER_BYTES = 16 * 1024


def _no_samples(path: str) -> AudioError:
    """A file that decoded to nothing: ``truncated`` if its header promised audio or it is big, else ``too_short``."""
    head = _head(path, 1 << 16)
    found = _format_words(path, head)
    promised = promised_seconds(path)
    if promised > 0:
        return AudioError(f"the {found} file is cut off before any sound (truncated download?; its header "
                          f"promises {_seconds(promised)})", kind=FailureKind.TRUNCATED)
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    if size > _HEADER_BYTES or head[:4] == b"OggS" and head.count(b"OggS") > 2:  # pages beyond the headers
        return AudioError(f"the {found} file is damaged or cut off: no sound could be decoded from it",
                          kind=FailureKind.TRUNCATED)
    return AudioError(f"no sound: the {found} file holds no audio (0 s)", kind=FailureKind.TOO_SHORT)


def _seconds(value: float) -> str:
    """A length for the user: "1.6 s", "3 min 20 s", "1 h 5 min"."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _partial(path: str, decoded: float, damage: str, need: float | None) -> str:
    """Whether a decode got the whole file: "" if so; else a note, or (below ``need`` s) an error.

    ``decoded`` is the end of the audio that came out, in seconds; ``damage`` the decoder's words
    if it stopped on an error. A file is cut off when its header promised noticeably more than
    ``decoded``. ``need`` None: any shortfall is an error.
    """
    promised = promised_seconds(path)
    cut = promised > 0 and decoded < promised - max(0.25, 0.01 * promised)
    if not cut and not damage:
        return ""
    found = _format_words(path)
    if cut:
        what = (f"the {found} file is {'cut off or damaged' if damage else 'cut off'} after {_seconds(decoded)} "
                f"of {_seconds(promised)} (truncated download?)")
    else:
        what = f"the {found} file is damaged after {_seconds(decoded)} ({damage})"
    if need is None or decoded < need:
        if decoded < 0.05:
            what = (f"the {found} file is cut off before any sound (truncated download?)" if cut else
                    f"the {found} file is damaged: no sound could be decoded from it ({damage})")
            raise AudioError(what, kind=FailureKind.TRUNCATED)
        too_short = f", too little to analyse: musicrec needs at least {_seconds(need)}" if need is not None else ""
        raise AudioError(what + too_short, kind=FailureKind.TRUNCATED)
    return what + "; the part that is there was analysed"


class _ImpossibleFormat(Exception):
    """A header that describes no real audio; the message is what it claims ("a sample rate of 0 Hz")."""


def _check_format(sample_rate: int, channels: int) -> None:
    if not 1000 <= sample_rate <= MAX_SAMPLE_RATE:
        raise _ImpossibleFormat(f"an impossible sample rate ({sample_rate} Hz; musicrec reads 1 to "
                                f"{MAX_SAMPLE_RATE // 1000} kHz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _ImpossibleFormat(f"an impossible number of channels ({channels}; musicrec reads 1 to {MAX_CHANNELS})")


def _impossible(path: str, claim: str) -> AudioError:
    """A header that claims impossible audio: a file of another kind that a decoder half-took, or a broken one."""
    head = _head(path)
    if sniff_format(head) is None:
        return _not_audio(path, head)
    return AudioError(f"not a {_format_words(path, head)} file musicrec can read: its header claims {claim}",
                      kind=FailureKind.NOT_AUDIO)


def _not_audio(path: str, head: bytes | None = None) -> AudioError:
    head = _head(path) if head is None else head
    return AudioError(f"not an audio file that {extension_format(path)} can read{_content_hint(head)}",
                      kind=FailureKind.NOT_AUDIO)


def _undecodable(path: str, err: BaseException, partly_understood: bool) -> AudioError:
    """Nothing could be decoded: not audio, or (a known format) damaged or cut off; the decoder's words in brackets."""
    kind = _os_failure_kind(err)
    if kind is FailureKind.VANISHED:
        return AudioError("the file disappeared during the scan (moved or deleted)", kind=kind)
    if kind is FailureKind.UNREADABLE and isinstance(err, OSError):
        return AudioError(os_error_reason(err, path), kind=kind)
    head = _head(path)
    found = sniff_format(head)
    if found is None and not partly_understood:
        return _not_audio(path, head)
    return AudioError(f"the {_format_words(path, head)} file is damaged or cut off: no sound could be "
                      f"decoded from it ({_describe(err, path)})", kind=FailureKind.TRUNCATED)


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
