"""Which of many texts contain a word: the song list's filter at a million songs, without a Python call per row.

The texts are joined once into one UTF-8 buffer (rows separated by NUL) with an array of where
each row starts. A word is found either by a regular expression that consumes the rest of a row
after a hit (one match per matching row, fast when few rows match) or by numpy comparisons over
the whole buffer reduced per row (a fixed cost, fast when many rows match); the choice is made
from the word's density in the first megabyte. UTF-8 is self-synchronising, so a byte match of
a word is a match of its characters. The result equals ``[word in text for text in texts]``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_SEP = b"\x00"
_SAMPLE = 1 << 20


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class TextIndex:
    """Rows of ``texts`` (as they are now: a later change needs a new index) that contain a word."""

    def __init__(self, texts: Sequence[str]):
        self.n = len(texts)
        joined = "\x00".join(texts) + "\x00"
        self.data = _encode(joined)
        self.array = np.frombuffer(self.data, dtype=np.uint8)
        separators = np.flatnonzero(self.array == 0)
        if len(separators) == self.n:
            self.starts = np.empty(self.n, dtype=np.int64)
            if self.n:
                self.starts[0] = 0
                self.starts[1:] = separators[:-1] + 1
        else:  # a text holds NUL itself: count each row's bytes
            lengths = np.fromiter((len(_encode(t)) + 1 for t in texts), dtype=np.int64, count=self.n)
            self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self._texts = texts
        self._mask = np.zeros(len(self.array), dtype=bool)
        self._byte_counts: np.ndarray | None = None

    def rows_with(self, word: str) -> np.ndarray:
        """Ascending row numbers whose text contains ``word`` (a non-empty string)."""
        if self.n == 0:
            return np.zeros(0, dtype=np.int64)
        needle = _encode(word)
        if b"\x00" in needle or not needle:
            return np.fromiter((i for i, t in enumerate(self._texts) if word in t), dtype=np.int64)
        sample = min(len(self.data), _SAMPLE)
        hits = self.data.count(needle, 0, sample)
        if hits * len(self.data) / sample < self.n / 4:
            return self._rows_by_regex(needle)
        return self._rows_by_mask(needle)

    def _rows_by_regex(self, needle: bytes) -> np.ndarray:
        pattern = re.compile(re.escape(needle) + b"[^\x00]*")
        positions = np.fromiter((m.start() for m in pattern.finditer(self.data)), dtype=np.int64)
        rows = np.searchsorted(self.starts, positions, side="right") - 1
        if len(rows) > 1:  # a row holding NUL itself can match twice
            rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
        return rows

    def _rows_by_mask(self, needle: bytes) -> np.ndarray:
        """Every position of the needle's rarest byte, kept where the other bytes match too, reduced per row."""
        a, m = self.array, self._mask
        if len(needle) == 1:
            np.equal(a, needle[0], out=m)
            return np.flatnonzero(np.logical_or.reduceat(m, self.starts))
        if self._byte_counts is None:  # how common each byte is, from the first 4 MB
            self._byte_counts = np.bincount(a[:1 << 22], minlength=256)
        rare = min(range(len(needle)), key=lambda k: self._byte_counts[needle[k]])
        positions = np.flatnonzero(a == needle[rare]) - rare  # where the needle would start
        positions = positions[(positions >= 0) & (positions <= len(a) - len(needle))]
        for k in range(len(needle)):
            if k != rare and len(positions):
                positions = positions[a[positions + k] == needle[k]]
        m[:] = False
        m[positions] = True
        return np.flatnonzero(np.logical_or.reduceat(m, self.starts))

    def rows_with_all(self, words: Sequence[str], rows: np.ndarray | None = None, *,
                      small: int = 50_000) -> np.ndarray:
        """Ascending rows (of ``rows`` if given) that contain every word; few candidates are checked one by one."""
        for word in sorted(words, key=len, reverse=True):  # a longer word is usually rarer
            if rows is not None and len(rows) <= small:
                texts = self._texts
                rows = np.fromiter((r for r in rows.tolist() if word in texts[r]), dtype=np.int64)
            else:
                found = self.rows_with(word)
                if rows is None:
                    rows = found
                else:  # both ascending: keep the candidates found again (no sort of both)
                    keep = np.zeros(self.n, dtype=bool)
                    keep[found] = True
                    rows = rows[keep[rows]]
        return np.arange(self.n, dtype=np.int64) if rows is None else rows
