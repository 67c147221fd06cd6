"""Datasets: each source becomes a list of :class:`LabelledTrack` (path, label, group, ...).

Tracks that share a ``group`` (near-duplicate file names, the same artist) always land
in the same split (``training/data/splits.py``).

Supported sources:
- the Debian game-soundtrack corpus (``manifest.tsv``; label = package = album; its
  folder is :func:`training.config.corpus_dir`);
- FMA (``fma_metadata/tracks.csv`` with its 3-row header, ``fma_small/NNN/NNNNNN.mp3``;
  official ``set.split``; label = ``track.genre_top``; group = artist);
- a folder per label (GTZAN-style ``root/label/track.ext``);
- an unlabelled folder (label ``""``; for the teacher / contrastive objectives).

``LabelledTrack`` is a training example, not the app's library entry
(``musicrec_gui.core.library.Track``).
"""


from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from musicrec_gui.core.audio import find_audio_files
from training.config import corpus_dir


@dataclass(frozen=True)
class LabelledTrack:
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


def corpus_tracks(root: str | os.PathLike | None = None) -> list[LabelledTrack]:
    """The Debian soundtrack corpus (default: :func:`training.config.corpus_dir`): label = package (album), composer where known."""
    root = Path(root) if root is not None else corpus_dir()
    tracks = []
    with open(root / "manifest.tsv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            tracks.append(
                LabelledTrack(
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
) -> list[LabelledTrack]:
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
            LabelledTrack(path=str(path), label=genre, group=f"artist:{row.get(('artist', 'id'), tid)}", seconds=seconds, split=split)
        )
    return tracks


def folder_tracks(root: str | os.PathLike) -> list[LabelledTrack]:
    """GTZAN-style ``root/label/track.ext``: the first folder level is the label."""
    root = Path(root)
    tracks = []
    for path in find_audio_files(root):
        label = Path(path).relative_to(root).parts[0]
        if label == Path(path).name:
            continue  # files directly under root have no label
        tracks.append(LabelledTrack(path=path, label=label, group=f"{label}/{near_duplicate_key(path)}"))
    return tracks


def unlabelled_tracks(root: str | os.PathLike) -> list[LabelledTrack]:
    """Every audio file below ``root``, without labels (grouped by folder + near-duplicate name)."""
    root = Path(root)
    return [
        LabelledTrack(path=p, label="", group=f"{Path(p).parent.relative_to(root)}/{near_duplicate_key(p)}")
        for p in find_audio_files(root)
    ]
