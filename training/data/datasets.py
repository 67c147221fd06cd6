"""Datasets → track-level splits → cached log-mel windows (memory-mapped .npy).

Every dataset becomes a list of :class:`Track` (path, label, group, ...) and is
split **by track** (never by slice). Tracks that share a ``group`` (near-duplicate
file names, the same artist) always land in the same split.

The audio front end is the app's own: ``musicrec_gui.core.audio.load_audio`` and
``musicrec_gui.core.features.log_mel_spectrogram``. A cached *window* is the
normalised log-mel of a 30-s excerpt exactly as the app computes it; window 0 of a
track is the app's default analysis (the centred 30 s), further windows are evenly
spaced over the track for training variety. Training samples 128-frame slices from
windows (random offsets); evaluation uses the app's slices of window 0.

Supported sources:
- the Debian game-soundtrack corpus (``manifest.tsv``; label = package = album);
- FMA (``fma_metadata/tracks.csv`` with its 3-row header, ``fma_small/NNN/NNNNNN.mp3``;
  official ``set.split``; label = ``track.genre_top``; group = artist);
- a folder per label (GTZAN-style ``root/label/track.ext``);
- an unlabelled folder (label ``""``; for the teacher / contrastive objectives).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from musicrec_gui.core.audio import find_audio_files, load_audio, probe_duration
from musicrec_gui.core.config import FeatureConfig
from musicrec_gui.core.features import log_mel_spectrogram, slice_starts

CORPUS_DIR = Path(os.environ.get("MUSICREC_CORPUS", Path.home() / ".cache" / "musicrec-corpus"))
CACHE_DIR = Path(__file__).resolve().parent / "cache"
EXCERPT_SECONDS = 30.0
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Track:
    path: str  # absolute
    label: str  # album/package, genre or folder name; "" when unlabelled
    group: str  # tracks sharing a group never straddle splits
    seconds: float = 0.0
    composer: str = ""
    split: str = ""  # official split when the dataset has one (FMA)


# --------------------------------------------------------------------------- grouping

_VARIANT_WORDS = re.compile(
    r"(loop|intro|outro|short|long|full|remix|remaster(ed)?|edit|alt|alternate|version|ver|old|new|final|"
    r"part|pt|mix|v|take|reprise|ext(ended)?|instrumental|inst|slow|fast|var)$"
)


def near_duplicate_key(path: str) -> str:
    """Normalised file stem: variants of one piece ("theme_loop2.ogg", "Theme (intro).ogg") share it.

    The stem is lower-cased and cut into letter and digit runs; trailing variant words
    ("loop", "intro", "remix", "v", ...) are dropped together with a number right after
    them. Other numbers are kept: "ingame_09" and "ingame_14" are different pieces.
    """
    stem = Path(path.split("!")[-1]).stem.lower()
    stem = stem.split("__")[-1]  # corpus names are "dir__file"
    words = re.findall(r"[a-z]+|[0-9]+", stem)
    while len(words) > 1:
        if _VARIANT_WORDS.fullmatch(words[-1]):
            words.pop()
        elif words[-1].isdigit() and len(words) > 2 and _VARIANT_WORDS.fullmatch(words[-2]):
            words.pop()
            words.pop()
        else:
            break
    return "-".join(words) or stem


# --------------------------------------------------------------------------- datasets


def corpus_tracks(root: str | os.PathLike = CORPUS_DIR) -> list[Track]:
    """The Debian soundtrack corpus: label = package (album), composer where known."""
    root = Path(root)
    tracks = []
    with open(root / "manifest.tsv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            tracks.append(
                Track(
                    path=str(root / row["path"]),
                    label=row["package"],
                    group=f"{row['package']}/{near_duplicate_key(row['path'])}",
                    seconds=float(row["seconds"] or 0.0),
                    composer=row.get("composer", "") or "",
                )
            )
    return tracks


def read_fma_tracks_csv(path: str | os.PathLike) -> dict[int, dict[tuple[str, str], str]]:
    """FMA's ``tracks.csv``: 2 rows of (top, sub) column names, a ``track_id`` row, then data.

    Returns ``{track_id: {(top, sub): value}}`` (values as strings).
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        top, sub, third = next(reader), next(reader), next(reader)
        if not third or third[0] != "track_id":
            raise ValueError(f"{path}: expected FMA's 3-row header (third row 'track_id,...'), got {third[:3]}")
        columns = list(zip(top, sub))
        rows = {}
        for row in reader:
            if not row:
                continue
            rows[int(row[0])] = {col: val for col, val in zip(columns[1:], row[1:])}
    return rows


def fma_audio_path(audio_dir: str | os.PathLike, track_id: int) -> Path:
    tid = f"{track_id:06d}"
    return Path(audio_dir) / tid[:3] / f"{tid}.mp3"


_FMA_SUBSETS = {"small": ("small",), "medium": ("small", "medium"), "large": ("small", "medium", "large")}


def fma_tracks(
    metadata_csv: str | os.PathLike, audio_dir: str | os.PathLike, *, subset: str = "small", require_audio: bool = True
) -> list[Track]:
    """FMA tracks of ``subset`` with a top genre; official split; group = artist id."""
    rows = read_fma_tracks_csv(metadata_csv)
    wanted = _FMA_SUBSETS[subset]
    tracks = []
    for tid, row in sorted(rows.items()):
        if row.get(("set", "subset")) not in wanted:
            continue
        genre = row.get(("track", "genre_top"), "")
        if not genre:
            continue
        path = fma_audio_path(audio_dir, tid)
        if require_audio and not path.is_file():
            continue
        split = {"training": "train", "validation": "validation", "test": "test"}.get(row.get(("set", "split"), ""), "")
        seconds = float(row.get(("track", "duration")) or 0.0)
        tracks.append(
            Track(path=str(path), label=genre, group=f"artist:{row.get(('artist', 'id'), tid)}", seconds=seconds, split=split)
        )
    return tracks


def folder_tracks(root: str | os.PathLike) -> list[Track]:
    """GTZAN-style ``root/label/track.ext``: the first folder level is the label."""
    root = Path(root)
    tracks = []
    for path in find_audio_files(root):
        label = Path(path).relative_to(root).parts[0]
        if label == Path(path).name:
            continue  # files directly under root have no label
        tracks.append(Track(path=path, label=label, group=f"{label}/{near_duplicate_key(path)}"))
    return tracks


def unlabelled_tracks(root: str | os.PathLike) -> list[Track]:
    """Every audio file below ``root``, without labels (grouped by folder + near-duplicate name)."""
    root = Path(root)
    return [
        Track(path=p, label="", group=f"{Path(p).parent.relative_to(root)}/{near_duplicate_key(p)}")
        for p in find_audio_files(root)
    ]


# --------------------------------------------------------------------------- splits


def split_tracks(
    tracks: Sequence[Track],
    *,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    seed: int = 1234,
    use_official: bool = True,
) -> dict[str, list[Track]]:
    """Deterministic track-level split, stratified by label, whole groups at a time.

    Tracks with an official ``split`` keep it (when ``use_official``); a group that has
    tracks in several official splits is moved whole to the split of its first track.
    Otherwise, per label, groups are shuffled with ``seed`` and dealt to test first,
    then validation (each gets at least one group when the label has three or more),
    the rest to train.
    """
    out: dict[str, list[Track]] = {s: [] for s in SPLITS}
    official = [t for t in tracks if use_official and t.split in SPLITS]
    rest = [t for t in tracks if not (use_official and t.split in SPLITS)]
    group_split: dict[str, str] = {}
    for t in official:
        group_split.setdefault(t.group, t.split)
    for t in official:
        out[group_split[t.group]].append(t)
    rng = random.Random(seed)
    by_label: dict[str, dict[str, list[Track]]] = defaultdict(lambda: defaultdict(list))
    for t in rest:
        if t.group in group_split:  # a group already placed by the official split
            out[group_split[t.group]].append(t)
        else:
            by_label[t.label][t.group].append(t)
    for label in sorted(by_label):
        groups = sorted(by_label[label])
        rng.shuffle(groups)
        n_tracks = sum(len(by_label[label][g]) for g in groups)
        targets = {"test": fractions[2] * n_tracks, "validation": fractions[1] * n_tracks}
        counts = {"test": 0, "validation": 0}
        for i, g in enumerate(groups):
            members = by_label[label][g]
            name = "train"
            remaining = len(groups) - i
            for s in ("test", "validation"):
                need_one = counts[s] == 0 and len(groups) >= 3
                if (counts[s] + len(members) / 2 <= targets[s] or need_one) and remaining > 1:
                    name = s
                    break
            if name != "train":
                counts[name] += len(members)
            out[name].extend(members)
    for s in SPLITS:
        out[s].sort(key=lambda t: t.path)
    return out


def assert_disjoint(splits: dict[str, list[Track]]) -> None:
    seen: dict[str, str] = {}
    for name, tracks in splits.items():
        for t in tracks:
            for key in (t.path, "group:" + t.group):
                if seen.setdefault(key, name) != name:
                    raise AssertionError(f"{key} is in both {seen[key]} and {name}")


# --------------------------------------------------------------------------- windows & cache


def window_offsets(seconds: float, n_windows: int, excerpt: float = EXCERPT_SECONDS) -> list[float]:
    """Start times of the cached windows: first the centred excerpt (the app's), then evenly spaced ones."""
    if seconds <= excerpt or n_windows <= 1:
        return [max(0.0, (seconds - excerpt) / 2.0)][: max(1, n_windows)] if seconds > 0 else [0.0]
    centre = (seconds - excerpt) / 2.0
    others = [float(x) for x in np.linspace(0.0, seconds - excerpt, n_windows + 1)]
    others.sort(key=lambda x: -abs(x - centre))  # the ones farthest from the centre first
    return [centre] + sorted(others[: n_windows - 1])


def window_frames(config: FeatureConfig, excerpt: float = EXCERPT_SECONDS) -> int:
    return 1 + int(round(excerpt * config.sample_rate)) // config.hop_length


def mfcc_stats(audio: np.ndarray, sr: int) -> np.ndarray:
    """Baseline song vector: mean and std of 20 MFCCs and of their deltas (80-d)."""
    import librosa

    if audio.size < 2048:
        audio = np.pad(audio, (0, 2048 - audio.size))
    mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20)
    delta = librosa.feature.delta(mfcc, mode="nearest") if mfcc.shape[1] >= 3 else np.zeros_like(mfcc)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]).astype(np.float32)


def _decode_window(args):
    path, offset, config_dict, frames = args
    config = FeatureConfig.from_dict(config_dict)
    try:
        audio = load_audio(path, sample_rate=config.sample_rate, offset=offset, duration=EXCERPT_SECONDS)
    except Exception as err:  # noqa: BLE001 - a broken file becomes an all-zero window, reported
        return None, None, 0, f"{path}: {err}"
    spec = log_mel_spectrogram(audio, config=config)
    n = min(spec.shape[1], frames)
    out = np.zeros((config.n_mels, frames), dtype=np.float16)
    out[:, :n] = spec[:, :n]
    return out, mfcc_stats(audio, config.sample_rate), n, ""


@dataclass
class WindowCache:
    """Memory-mapped windows: ``spec[i]`` is (n_mels, frames) float16 of window ``i``.

    ``track_of[i]`` is the index into ``tracks`` of window ``i``; ``n_frames[i]`` its valid
    frames (short tracks are zero-padded); ``window_index[i]`` 0 for the centred excerpt.
    """

    directory: Path
    tracks: list[Track]
    spec: np.ndarray
    mfcc: np.ndarray
    track_of: np.ndarray
    window_index: np.ndarray
    n_frames: np.ndarray
    config: FeatureConfig

    def windows_of(self, track_idx: int) -> np.ndarray:
        return np.flatnonzero(self.track_of == track_idx)

    def app_slices(self, track_idx: int) -> np.ndarray:
        """The app's slices of the centred excerpt: (n, n_mels, slice_frames, 1) float32."""
        w = self.windows_of(track_idx)[0]
        n = int(self.n_frames[w])
        f = self.config.slice_frames
        spec = np.asarray(self.spec[w], dtype=np.float32)
        starts = slice_starts(max(n, f), slice_frames=f)
        return np.stack([spec[:, s : s + f] for s in starts])[..., None]


def cache_key(tracks: Sequence[Track], n_windows: int, config: FeatureConfig) -> str:
    blob = json.dumps([[t.path, t.seconds] for t in tracks] + [n_windows, config.to_dict(), 2]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def build_cache(
    tracks: Sequence[Track],
    *,
    name: str,
    n_windows: int = 1,
    config: FeatureConfig = FeatureConfig(),
    cache_dir: str | os.PathLike = CACHE_DIR,
    workers: int = 2,
    verbose: bool = True,
) -> WindowCache:
    """Decode every track's windows with the app's front end, once; later calls memory-map the result."""
    tracks = list(tracks)
    directory = Path(cache_dir) / f"{name}-{config.fingerprint}-{cache_key(tracks, n_windows, config)}"
    done = directory / "index.json"
    if not done.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        jobs, track_of, window_index = [], [], []
        for i, t in enumerate(tracks):
            seconds = t.seconds or probe_duration(t.path)
            for w, off in enumerate(window_offsets(seconds, n_windows)):
                jobs.append((t.path, off, config.to_dict(), window_frames(config)))
                track_of.append(i)
                window_index.append(w)
        frames = window_frames(config)
        spec = np.lib.format.open_memmap(
            directory / "spec.npy", mode="w+", dtype=np.float16, shape=(len(jobs), config.n_mels, frames)
        )
        mfcc = np.zeros((len(jobs), 80), dtype=np.float32)
        n_frames = np.zeros(len(jobs), dtype=np.int32)
        errors = []
        if workers > 1:
            from multiprocessing import get_context

            pool = get_context("spawn").Pool(workers)
            results = pool.imap(_decode_window, jobs, chunksize=4)
        else:
            pool, results = None, map(_decode_window, jobs)
        for j, (s, m, n, err) in enumerate(results):
            if err:
                errors.append(err)
            else:
                spec[j], mfcc[j], n_frames[j] = s, m, n
            if verbose and (j + 1) % 100 == 0:
                print(f"  cached {j + 1}/{len(jobs)} windows", flush=True)
        if pool is not None:
            pool.close()
            pool.join()
        spec.flush()
        del spec
        np.save(directory / "mfcc.npy", mfcc)
        np.savez(directory / "meta.npz", track_of=np.array(track_of), window_index=np.array(window_index), n_frames=n_frames)
        done.write_text(
            json.dumps({"tracks": [asdict(t) for t in tracks], "config": config.to_dict(), "errors": errors}, indent=1)
        )
    return load_cache(directory)


def load_cache(directory: str | os.PathLike) -> WindowCache:
    directory = Path(directory)
    index = json.loads((directory / "index.json").read_text())
    meta = np.load(directory / "meta.npz")
    return WindowCache(
        directory=directory,
        tracks=[Track(**t) for t in index["tracks"]],
        spec=np.load(directory / "spec.npy", mmap_mode="r"),
        mfcc=np.load(directory / "mfcc.npy"),
        track_of=meta["track_of"],
        window_index=meta["window_index"],
        n_frames=meta["n_frames"],
        config=FeatureConfig.from_dict(index["config"]),
    )


# --------------------------------------------------------------------------- slices for training


def evenly_spaced_slices(cache: WindowCache, track_idx: int, n: int = 10) -> np.ndarray:
    """``n`` slices spread over all of a track's cached windows (deterministic). (n, n_mels, f, 1)."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    out = []
    for k in range(n):
        w = windows[k % len(windows)]
        valid = max(int(cache.n_frames[w]), f)
        per = -(-n // len(windows))
        j = k // len(windows)
        start = int(round((valid - f) * (j + 0.5) / per))
        out.append(np.asarray(cache.spec[w][:, start : start + f], dtype=np.float32))
    return np.stack(out)[..., None]


def random_slice(cache: WindowCache, track_idx: int, rng: np.random.Generator) -> np.ndarray:
    """One slice from a random window of the track at a random offset: (n_mels, f) float32."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    w = windows[rng.integers(len(windows))]
    valid = max(int(cache.n_frames[w]), f)
    start = int(rng.integers(0, valid - f + 1))
    return np.asarray(cache.spec[w][:, start : start + f], dtype=np.float32)


def track_indices(cache: WindowCache, subset: Iterable[Track]) -> np.ndarray:
    pos = {t.path: i for i, t in enumerate(cache.tracks)}
    return np.array([pos[t.path] for t in subset], dtype=np.int64)


def with_split(tracks: Sequence[Track], splits: dict[str, list[Track]]) -> list[Track]:
    where = {t.path: s for s, ts in splits.items() for t in ts}
    return [replace(t, split=where.get(t.path, t.split)) for t in tracks]


def random_slice_at(cache: WindowCache, track_idx: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Like :func:`random_slice` but also returns (start frame, window index) for teacher alignment."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    w = int(windows[rng.integers(len(windows))])
    valid = max(int(cache.n_frames[w]), f)
    start = int(rng.integers(0, valid - f + 1))
    return np.array(cache.spec[w][:, start : start + f], dtype=np.float32), start, w
