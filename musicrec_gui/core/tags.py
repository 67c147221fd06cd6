"""Tags a person understands: a song's most probable tags from an encoder's tag head."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from musicrec_gui.core.songtable import positions_in


def top_tags(probabilities: np.ndarray | None, names: Sequence[str], *, count: int = 5,
             minimum: float = 0.0) -> list[tuple[str, float]]:
    """The ``count`` most probable tags, best first.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n_tags,)] or None
        A song's mean tag probabilities (``Library.tag_probabilities``).
    names : sequence of str [shape=(n_tags,)]
        The encoder's tag names (its JSON's ``labels``).
    count : int
    minimum : float
        Leave out tags less probable than this.

    Returns
    -------
    list of (str, float)
        Empty when there are no probabilities or they do not match the names.
    """
    if probabilities is None or len(probabilities) != len(names) or not len(names):
        return []
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:count]
    return [(names[i], float(probabilities[i])) for i in order if probabilities[i] >= minimum]


def tags_text(tags: list[tuple[str, float]]) -> str:
    """"ambient 41 %, electronic 22 %" — the same in the app and the CLI."""
    return ", ".join(f"{name} {round(100 * probability)} %" for name, probability in tags)


class SongTags:
    """Each song's most probable tag names as small codes: ``tag:`` filtering and colouring by tag
    for a million songs in ~16 MB (a dict of a million tag strings takes ~0.2 GB).

    Parameters
    ----------
    names : sequence of str [shape=(n_tags,)]
        The encoder's tag names.
    ids : np.ndarray [shape=(n,)], int64, ascending
    codes : np.ndarray [shape=(n, k)], int16
        Indexes into ``names``, most probable first; -1 where a song has fewer than ``k``.
    """

    def __init__(self, names: Sequence[str], ids: np.ndarray | None = None, codes: np.ndarray | None = None):
        self.names = tuple(names)
        self.ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        self.codes = np.zeros((len(self.ids), 0), np.int16) if codes is None else np.asarray(codes, np.int16)
        self._folded = [name.casefold() for name in self.names]
        self._later: dict[int, np.ndarray] = {}  # songs analysed since: their codes, over the arrays'

    @classmethod
    def from_probabilities(cls, ids: np.ndarray, probabilities: np.ndarray, names: Sequence[str], *,
                           count: int = 4, minimum: float = 0.05) -> "SongTags":
        """Each song's tags as :func:`top_tags` gives them (names only), from ``Library.tag_table``'s
        ids (ascending) and rows [shape=(n, n_tags)]; no song's when the rows do not match the names."""
        return cls.from_chunks([(ids, probabilities)], names, count=count, minimum=minimum)

    @classmethod
    def from_chunks(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], names: Sequence[str], *,
                    count: int = 4, minimum: float = 0.05) -> "SongTags":
        """:meth:`from_probabilities` of ``Library.iter_tags``'s chunks: only codes are kept (a sort of a
        million songs' 50 probabilities at once would need ~0.8 GB of temporaries)."""
        count = min(count, len(names))
        all_ids, all_codes = [], []
        for ids, probabilities in chunks:
            probabilities = np.asarray(probabilities, dtype=np.float32)
            if probabilities.ndim != 2 or probabilities.shape[1] != len(names) or not len(names):
                return cls(names)
            order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
            kept = np.take_along_axis(probabilities, order, axis=1) >= minimum
            all_ids.append(np.asarray(ids, dtype=np.int64))
            all_codes.append(np.where(kept, order, -1).astype(np.int16))
        if not all_ids:
            return cls(names)
        return cls(names, np.concatenate(all_ids), np.concatenate(all_codes))

    def __len__(self) -> int:
        return len(self.ids) + len(self._later)

    def set(self, track_id: int, tag_names: Sequence[str]) -> None:
        """A song's tags as they are now (it was analysed again)."""
        index = {name: i for i, name in enumerate(self.names)}
        codes = [index[name] for name in tag_names if name in index]
        self._later[int(track_id)] = np.array(codes, dtype=np.int16)

    def names_of(self, track_id: int) -> tuple[str, ...]:
        """A song's tags, most probable first (empty if it has none)."""
        return tuple(self.names[c] for c in self._codes_of(np.array([track_id]))[0] if c >= 0)

    def _codes_of(self, ids: np.ndarray) -> np.ndarray:
        """The codes of each of ``ids`` [shape=(m, k)], -1 for none."""
        ids = np.asarray(ids, dtype=np.int64)
        width = max([self.codes.shape[1], *(len(c) for c in self._later.values())], default=0)
        out = np.full((len(ids), width), -1, dtype=np.int16)
        at = positions_in(self.ids, ids)
        out[at >= 0, :self.codes.shape[1]] = self.codes[at[at >= 0]]
        if self._later:
            for row in np.flatnonzero(np.isin(ids, np.fromiter(self._later, np.int64, len(self._later)))):
                codes = self._later[int(ids[row])]
                out[row] = -1
                out[row, :len(codes)] = codes
        return out

    def having_all(self, ids: np.ndarray, words: Sequence[str]) -> np.ndarray:
        """Which of ``ids`` [shape=(m,)] have, for every (case-folded) word, a tag whose name contains it."""
        keep = np.ones(len(ids), dtype=bool)
        if not words:
            return keep
        codes = self._codes_of(ids)
        for word in words:
            named = np.array([word in name for name in self._folded] + [False])  # code -1: the last, False
            keep &= named[codes].any(axis=1) if codes.shape[1] else False
        return keep

    def top(self, ids: np.ndarray) -> np.ndarray:
        """Each song's most probable tag [shape=(m,)], -1 for none."""
        codes = self._codes_of(ids)
        return codes[:, 0] if codes.shape[1] else np.full(len(ids), -1, np.int16)
