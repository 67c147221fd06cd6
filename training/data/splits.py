"""Track-level splits: every dataset is split **by track** (never by slice), whole groups at a time.

Tracks that share a ``group`` (near-duplicate file names, the same artist) always land
in the same split; the official split of a dataset (FMA) is kept when it has one.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import Sequence

from training.data.datasets import LabelledTrack

SPLITS = ("train", "validation", "test")


def split_tracks(
    tracks: Sequence[LabelledTrack],
    *,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    seed: int = 1234,
    use_official: bool = True,
) -> dict[str, list[LabelledTrack]]:
    """Deterministic track-level split, stratified by label, whole groups at a time.

    Tracks with an official ``split`` keep it (when ``use_official``); a group that has
    tracks in several official splits is moved whole to the split of its first track.
    Otherwise, per label, groups are shuffled with ``seed`` and dealt to test first,
    then validation (each gets at least one group when the label has three or more),
    the rest to train.
    """
    out: dict[str, list[LabelledTrack]] = {s: [] for s in SPLITS}
    official = [t for t in tracks if use_official and t.split in SPLITS]
    rest = [t for t in tracks if not (use_official and t.split in SPLITS)]
    group_split: dict[str, str] = {}
    for t in official:
        group_split.setdefault(t.group, t.split)
    for t in official:
        out[group_split[t.group]].append(t)
    rng = random.Random(seed)
    by_label: dict[str, dict[str, list[LabelledTrack]]] = defaultdict(lambda: defaultdict(list))
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


def assert_disjoint(splits: dict[str, list[LabelledTrack]]) -> None:
    seen: dict[str, str] = {}
    for name, tracks in splits.items():
        for t in tracks:
            for key in (t.path, "group:" + t.group):
                if seen.setdefault(key, name) != name:
                    raise AssertionError(f"{key} is in both {seen[key]} and {name}")


def with_split(tracks: Sequence[LabelledTrack], splits: dict[str, list[LabelledTrack]]) -> list[LabelledTrack]:
    where = {t.path: s for s, ts in splits.items() for t in ts}
    return [replace(t, split=where.get(t.path, t.split)) for t in tracks]
