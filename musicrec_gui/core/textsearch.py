"""Which of many texts contain a word: the song list's filter at a million songs, without a Python call per row.

The texts live in one UTF-8 buffer, each row ending with a NUL byte, with an array of where each
row starts. A word is found by numpy byte comparisons over the buffer, one cache-sized chunk at a
time (a chunk's masks stay in the CPU cache, so each byte of the word costs a few milliseconds per
100 MB instead of tens), starting with the word's rarest bytes; once few candidates are left, the
remaining bytes are checked at those positions only. Each chunk's hits are reduced per row. UTF-8 is
self-synchronising, so a byte match of a word is a match of its characters, and a word without NUL
cannot run from one row into the next. The result equals ``[word in text for text in texts]``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

CHUNK_BYTES = 1 << 20  # a chunk, its mask and a temporary fit in a CPU's cache
FULL_PASSES = 2  # bytes compared over a whole chunk before the rest may be checked at candidate positions
SPARSE = 64  # ... which they are once fewer than one position in this many is a candidate


def encode(text: str) -> bytes:
    """UTF-8, keeping lone surrogates (a path's undecodable bytes) as they are."""
    return text.encode("utf-8", "surrogatepass")


class TextIndex:
    """Rows of a buffer of texts (as they are now: a later change needs a new index) that contain a word.

    Parameters
    ----------
    data : ndarray of uint8, shape (n_bytes,)
        The rows' UTF-8 bytes one after another, each followed by a NUL byte. Not copied.
    starts : ndarray of int64, shape (n_rows,)
        Where each row starts, ascending; row ``i`` runs to ``starts[i + 1]`` (the last to the end).
    chunk_bytes : int
        About how many bytes are compared at a time.
    """

    def __init__(self, data: np.ndarray, starts: np.ndarray, *, chunk_bytes: int = CHUNK_BYTES):
        self.array = data
        self.n = len(starts)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.append(self.starts[1:], len(data)).astype(np.int64)
        # How common each byte is, from a spread-out sample of a million (made here, not on a keystroke).
        self._byte_counts = np.bincount(data[::max(1, len(data) >> 20)], minlength=256)
        # Chunks of whole rows, about CHUNK_BYTES each: (first row, last row + 1, first byte, last byte + 1).
        if self.n:
            firsts = np.unique(np.searchsorted(self.starts, np.arange(0, len(data), chunk_bytes)))
            firsts = firsts[firsts < self.n]  # a chunk starts at the first row starting in its bytes
            rows = np.append(firsts, self.n)
            self._chunks = [(int(r0), int(r1), int(self.starts[r0]), int(self.ends[r1 - 1]))
                            for r0, r1 in zip(rows[:-1], rows[1:])]
        else:
            self._chunks = []
        longest = max((b1 - b0 for _r0, _r1, b0, b1 in self._chunks), default=0)
        self._mask = np.zeros(longest, dtype=bool)
        self._scratch = np.zeros(longest, dtype=bool)

    @classmethod
    def from_texts(cls, texts: Sequence[str], *, chunk_bytes: int = CHUNK_BYTES) -> "TextIndex":
        """An index over a list of strings (each may hold NUL itself)."""
        parts = [encode(t) + b"\x00" for t in texts]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64) if parts else np.zeros(0, np.int64)
        return cls(np.frombuffer(b"".join(parts), dtype=np.uint8), starts, chunk_bytes=chunk_bytes)

    def text_bytes(self, row: int) -> bytes:
        """A row's bytes, without its closing NUL."""
        return self.array[self.starts[row]:self.ends[row] - 1].tobytes()

    def rows_with(self, word: str) -> np.ndarray:
        """Ascending row numbers whose text contains ``word`` (a non-empty string)."""
        needle = encode(word)
        if self.n == 0 or not needle:
            return np.arange(self.n if not needle else 0, dtype=np.int64)
        if b"\x00" in needle:  # could run across a row's end: row by row
            return np.fromiter((r for r in range(self.n) if needle in self.text_bytes(r)), dtype=np.int64)
        return self._rows_by_mask(needle)

    def _rows_by_mask(self, needle: bytes) -> np.ndarray:
        order = sorted(range(len(needle)), key=lambda k: self._byte_counts[needle[k]])
        found = [self._chunk_rows(chunk, needle, order) for chunk in self._chunks]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def _chunk_rows(self, chunk: tuple[int, int, int, int], needle: bytes, order: list[int]) -> np.ndarray:
        """Rows of one chunk holding ``needle``; ``order`` lists its byte offsets, rarest first."""
        r0, r1, b0, b1 = chunk
        segment = self.array[b0:b1]
        width = len(segment) - len(needle) + 1  # positions where the needle could start
        if width <= 0:
            return np.zeros(0, dtype=np.int64)
        mask, scratch = self._mask[:len(segment)], self._scratch[:width]
        first = order[0]
        np.equal(segment[first:first + width], needle[first], out=mask[:width])
        mask[width:] = False
        if not mask.any():
            return np.zeros(0, dtype=np.int64)
        rest = order[1:]
        while rest and (len(order) - len(rest) < FULL_PASSES
                        or np.count_nonzero(mask[:width]) * SPARSE > width):  # still many candidates
            k, rest = rest[0], rest[1:]
            np.equal(segment[k:k + width], needle[k], out=scratch)
            mask[:width] &= scratch
        if rest or np.count_nonzero(mask[:width]) * SPARSE < width:  # few candidates: by position
            positions = np.flatnonzero(mask[:width])
            for k in rest:
                positions = positions[segment[positions + k] == needle[k]]
            rows = np.searchsorted(self.starts[r0:r1] - b0, positions, side="right") - 1
            if len(rows) > 1:
                rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
            return rows + r0
        hits = np.logical_or.reduceat(mask, self.starts[r0:r1] - b0)
        return np.flatnonzero(hits) + r0

    def rows_with_all(self, words: Sequence[str], rows: np.ndarray | None = None, *,
                      small: int = 50_000) -> np.ndarray:
        """Ascending rows (of ``rows`` if given) that contain every word; few candidates are checked one by one."""
        for word in sorted(words, key=len, reverse=True):  # a longer word is usually rarer
            if rows is not None and len(rows) <= small:
                needle = encode(word)
                rows = np.fromiter((r for r in rows.tolist() if needle in self.text_bytes(r)), dtype=np.int64)
            else:
                found = self.rows_with(word)
                if rows is None:
                    rows = found
                else:  # both ascending: keep the candidates found again (no sort of both)
                    keep = np.zeros(self.n, dtype=bool)
                    keep[found] = True
                    rows = rows[keep[rows]]
        return np.arange(self.n, dtype=np.int64) if rows is None else rows
