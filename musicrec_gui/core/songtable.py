"""The open folder's songs as columns: a million of them in about 300 MB, sorted and searched with numpy.

One Python ``Track`` per song costs about 500 bytes and a million of them take seconds to sort; here
each song is a *slot*: numbers in numpy arrays, its four texts in one growing UTF-8 buffer, and its
case-folded search text in another. A ``Track`` is made only when asked for (a visible row, the
anchor). Slots are never removed; a changed song gets its new texts appended, and its old ones stay
in the buffers (the search index skips them) until the folder is read again.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from musicrec_gui.core.errors import FailureKind
from musicrec_gui.core.library import Track
from musicrec_gui.core.names import display_text
from musicrec_gui.core.textsearch import TextIndex, encode

FIELDS = ("title", "artist", "album", "path")
SORT_FIELDS = ("title", "artist", "album")
KEY_BYTES = 16  # the sort keys' stored prefix; longer ties are settled from the whole text
STATUSES = ("pending", "done", "failed")


class _Growing:
    """A numpy array that grows by a quarter at a time (amortised O(1) appends, little slack)."""

    def __init__(self, dtype, shape: tuple[int, ...] = ()):
        self.array = np.zeros((1024, *shape), dtype=dtype)
        self.n = 0

    def reserve(self, extra: int) -> None:
        if self.n + extra > len(self.array):
            size = max(len(self.array) + max(len(self.array) // 4, 1024), self.n + extra)
            grown = np.zeros((size, *self.array.shape[1:]), self.array.dtype)
            grown[:self.n] = self.array[:self.n]
            self.array = grown

    def extend(self, values) -> int:
        """Append ``values``; the index of the first."""
        values = np.asarray(values, dtype=self.array.dtype)
        self.reserve(len(values))
        first = self.n
        self.array[first:first + len(values)] = values
        self.n += len(values)
        return first

    def trim(self) -> None:
        """Give back the room beyond the last value."""
        if len(self.array) > self.n:
            self.array = self.array[:self.n].copy()

    @property
    def view(self) -> np.ndarray:
        return self.array[:self.n]


def positions_in(ascending: np.ndarray, values) -> np.ndarray:
    """Where each of ``values`` stands in the ascending array ``ascending``, -1 where it is not there.

    Returns
    -------
    np.ndarray [shape=(len(values),)], int64
    """
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    found = np.full(len(values), -1, dtype=np.int64)
    if len(ascending) and len(values):
        at = np.minimum(np.searchsorted(ascending, values), len(ascending) - 1)
        hit = ascending[at] == values
        found[hit] = at[hit]
    return found


def with_room(rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` [shape=(m,)] made ``n`` long (its new tail unset): a view over a buffer grown by a
    quarter when full, so arrays that gain one song at a time are not copied each time."""
    buffer = rows.base if isinstance(rows.base, np.ndarray) and rows.base.ndim == 1 else None
    if buffer is not None and len(buffer) >= n and rows.flags.c_contiguous and rows.dtype == buffer.dtype \
            and rows.ctypes.data == buffer.ctypes.data:
        return buffer[:n]
    grown = np.empty(max(n, len(rows) + len(rows) // 4 + 1024), dtype=rows.dtype)
    grown[:len(rows)] = rows
    return grown[:n]


class SongTable:
    """Songs by slot (the order they were added), with lookups by track id.

    Attributes
    ----------
    ids : ndarray of int64, shape (n,)
    durations : ndarray of float64, shape (n,)
    status_codes : ndarray of int8, shape (n,)
        Index into :data:`STATUSES` (names outside it are appended to ``self.statuses``).
    """

    STALE_LIMIT = 20_000  # songs changed since the search index was built, checked one by one up to this
    SMALL = 50_000  # candidate songs checked one by one instead of a pass over every song

    def __init__(self, tracks: Iterable[Track] = (), *, searchable: bool = True):
        self.searchable = searchable  # False: no search texts or sort keys (a third of the memory)
        self.statuses = list(STATUSES)
        self._id = _Growing(np.int64)
        self._size = _Growing(np.int64)
        self._mtime = _Growing(np.int64)
        self._duration = _Growing(np.float64)
        self._status = _Growing(np.int8)
        self._missing = _Growing(np.bool_)
        self._keys = _Growing(f"S{KEY_BYTES}", (len(SORT_FIELDS),))  # case-folded prefixes for sorting
        self._text_start = _Growing(np.int64)  # each slot's four texts, one after another in ``_text``
        self._text_len = _Growing(np.uint32, (len(FIELDS),))
        self._text = _Growing(np.uint8)
        self._entry = _Growing(np.int64)  # each slot's current search entry
        # Search entries: every search text ever given (a changed song adds one), NUL-terminated in ``_search``.
        self._entry_start = _Growing(np.int64)
        self._entry_slot = _Growing(np.int64)
        self._search = _Growing(np.uint8)
        self._errors: dict[int, tuple[str, FailureKind | None]] = {}  # slot → (error, kind) of failed songs
        self._slot_of: dict[int, int] = {}  # id → slot for songs added since ``_sorted_ids`` was made
        self._sorted_ids = np.zeros(0, np.int64)
        self._sorted_slots = np.zeros(0, np.int64)
        self._index: TextIndex | None = None
        self._indexed_entries = 0
        # A text holds NUL: it sorts below everything, yet reads in a key as the key's padding, so
        # every tie of keys is then settled from the whole texts (tags never hold NUL once cleaned).
        self._nul_in_texts = False
        self.extend(tracks)

    def __len__(self) -> int:
        return self._id.n

    @property
    def ids(self) -> np.ndarray:
        return self._id.view

    @property
    def durations(self) -> np.ndarray:
        return self._duration.view

    @property
    def status_codes(self) -> np.ndarray:
        return self._status.view

    # -- adding and changing songs ------------------------------------------------------------
    def extend(self, tracks: Iterable[Track]) -> list[Track]:
        """Add the songs not in the table yet (a song already here is newer); the ones added."""
        tracks = list(tracks)
        known = self.slots_of(np.fromiter((t.id for t in tracks), dtype=np.int64, count=len(tracks))) >= 0
        added, seen = [], set()
        for track, is_known in zip(tracks, known.tolist()):
            if not is_known and track.id not in seen:
                seen.add(track.id)
                added.append(track)
        if not added:
            return added
        first = len(self)
        self._id.extend([t.id for t in added])
        self._size.extend([t.size for t in added])
        self._mtime.extend([t.mtime_ns for t in added])
        self._duration.extend([t.duration or 0.0 for t in added])
        self._status.extend([self._status_code(t.status) for t in added])
        self._missing.extend([t.missing for t in added])
        encoded = _encode_texts(added, searchable=self.searchable)
        self._nul_in_texts = self._nul_in_texts or b"\x00" in encoded.text
        self._append_texts(first, encoded)
        if self.searchable:
            self._keys.extend(encoded.keys)
        for slot, track in enumerate(added, first):
            self._slot_of[track.id] = slot
            if track.status == "failed":
                self._errors[slot] = (track.error, track.error_kind)
        if len(self._slot_of) > 50_000:
            self._sort_ids()
        return added

    def upsert(self, track: Track) -> tuple[int, bool]:
        """Add a song or change the one with its id: its slot, and whether it was added."""
        slot = self.slot_of(track.id)
        if slot is None:
            self.extend([track])
            return len(self) - 1, True
        self._size.array[slot] = track.size
        self._mtime.array[slot] = track.mtime_ns
        self._duration.array[slot] = track.duration or 0.0
        self._status.array[slot] = self._status_code(track.status)
        self._missing.array[slot] = track.missing
        if track.status == "failed":
            self._errors[slot] = (track.error, track.error_kind)
        else:
            self._errors.pop(slot, None)
        if [self.text(slot, f) for f in range(len(FIELDS))] != [track.title, track.artist, track.album, track.path]:
            encoded = _encode_texts([track], searchable=self.searchable)  # the new texts go at the end
            self._nul_in_texts = self._nul_in_texts or b"\x00" in encoded.text
            self._append_texts(slot, encoded, update=True)
            if self.searchable:
                self._keys.array[slot] = encoded.keys[0]
        return slot, False

    def _status_code(self, status: str) -> int:
        if status not in self.statuses:
            self.statuses.append(status)
        return self.statuses.index(status)

    def _append_texts(self, slot: int, encoded: "_Encoded", *, update: bool = False) -> None:
        """Store the texts of slots ``slot, slot + 1, …`` (a changed song's: ``update``) at the buffers' ends."""
        m = len(encoded.lengths)
        starts = self._text.n + _starts(encoded.lengths.sum(axis=1, dtype=np.int64))
        self._text.extend(np.frombuffer(encoded.text, np.uint8))
        if update:
            self._text_start.array[slot] = starts[0]
            self._text_len.array[slot] = encoded.lengths[0]
        else:
            self._text_start.extend(starts)
            self._text_len.extend(encoded.lengths)
        if not self.searchable:
            return
        entry_starts = self._search.n + _starts(encoded.search_lengths)
        self._search.extend(np.frombuffer(encoded.search, np.uint8))
        first_entry = self._entry_start.extend(entry_starts)
        self._entry_slot.extend(np.arange(slot, slot + m))
        entries = np.arange(first_entry, first_entry + m)
        if update:
            self._entry.array[slot] = entries[0]
        else:
            self._entry.extend(entries)

    def reserve(self, count: int) -> None:
        """Make room for ``count`` more songs' numbers at once (a table filled in chunks to a known size)."""
        columns = [self._id, self._size, self._mtime, self._duration, self._status, self._missing,
                   self._text_start, self._text_len]
        for value in columns + ([self._keys, self._entry] if self.searchable else []):
            value.reserve(count)

    def trim(self) -> None:
        """Give back the room kept for more songs (once a folder is read: a million songs leave ~100 MB)."""
        for value in vars(self).values():
            if isinstance(value, _Growing):
                value.trim()
        self._index = None  # it viewed the untrimmed search buffer

    # -- reading -----------------------------------------------------------------------------------
    def slot_of(self, track_id: int) -> int | None:
        slot = self._slot_of.get(track_id)
        if slot is not None:
            return slot
        at = int(positions_in(self._sorted_ids, [track_id])[0])
        return None if at < 0 else int(self._sorted_slots[at])

    def _sort_ids(self) -> None:
        ids = self.ids
        if (ids[1:] > ids[:-1]).all():  # the library lists songs by id: nothing to sort
            self._sorted_slots, self._sorted_ids = np.arange(len(ids)), ids.copy()
        else:
            self._sorted_slots = np.argsort(ids, kind="stable")
            self._sorted_ids = ids[self._sorted_slots]
        self._slot_of = {}

    def text(self, slot: int, field: int) -> str:
        """One of a song's texts (``field`` indexes :data:`FIELDS`)."""
        lengths = self._text_len.array[slot]
        start = int(self._text_start.array[slot]) + int(lengths[:field].sum())
        return self._text.array[start:start + int(lengths[field])].tobytes().decode("utf-8", "surrogatepass")

    def status(self, slot: int) -> str:
        return self.statuses[self._status.array[slot]]

    def error(self, slot: int) -> str:
        return self._errors.get(slot, ("", None))[0]

    def track(self, slot: int) -> Track:
        """The song in ``slot`` as a ``Track`` (made now: keep it only as long as needed)."""
        lengths = self._text_len.array[slot].tolist()
        start = int(self._text_start.array[slot])
        raw = self._text.array[start:start + sum(lengths)].tobytes()
        texts, at = [], 0
        for length in lengths:
            texts.append(raw[at:at + length].decode("utf-8", "surrogatepass"))
            at += length
        error, kind = self._errors.get(slot, ("", None))
        return Track(id=int(self._id.array[slot]), path=texts[3], size=int(self._size.array[slot]),
                     mtime_ns=int(self._mtime.array[slot]), title=texts[0], artist=texts[1], album=texts[2],
                     duration=float(self._duration.array[slot]), status=self.status(slot), error=error,
                     missing=bool(self._missing.array[slot]), error_kind=kind)

    def track_by_id(self, track_id: int) -> Track | None:
        slot = self.slot_of(track_id)
        return None if slot is None else self.track(slot)

    def tracks(self) -> "TrackView":
        """Every song in slot order, as it is when read (songs added later are in it too)."""
        return TrackView(self)

    def texts(self, field: str, slots: np.ndarray | None = None) -> list[str]:
        """One of the four texts of the songs in ``slots`` (default: all, in slot order)."""
        column = FIELDS.index(field)
        lengths = self._text_len.view if slots is None else self._text_len.array[slots]
        starts = self._text_start.view if slots is None else self._text_start.array[slots]
        offsets = (starts + lengths[:, :column].sum(axis=1, dtype=np.int64)).tolist()
        buffer = memoryview(self._text.array)
        return [str(buffer[o:o + n], "utf-8", "surrogatepass") for o, n in zip(offsets, lengths[:, column].tolist())]

    def with_status(self, status: str) -> "TrackView":
        """The songs of one status in slot order, found with numpy (no ``Track`` made for the others)."""
        if status not in self.statuses:
            return TrackView(self, np.zeros(0, dtype=np.int64))
        return TrackView(self, np.flatnonzero(self.status_codes == self.statuses.index(status)))

    def folded(self, field: str) -> list[str]:
        """One of the four texts of every song, case-folded, in slot order."""
        return [text.casefold() for text in self.texts(field)]

    def slots_of(self, ids: np.ndarray) -> np.ndarray:
        """The slot of each of ``ids`` [shape=(m,)], -1 where a song is not in the table."""
        ids = np.asarray(ids, dtype=np.int64)
        at = positions_in(self._sorted_ids, ids)
        slots = np.full(len(ids), -1, dtype=np.int64)
        slots[at >= 0] = self._sorted_slots[at[at >= 0]]
        if self._slot_of:
            for row in np.flatnonzero(slots < 0).tolist():
                slots[row] = self._slot_of.get(int(ids[row]), -1)
        return slots

    # -- sorting ---------------------------------------------------------------------------------
    def sort_order(self, field: str, *, descending: bool = False) -> np.ndarray:
        """Slots sorted by a field as ``sorted(..., key=casefold, reverse=descending)`` orders them (stable).

        ``field`` is one of :data:`SORT_FIELDS`, ``"duration"`` or ``"status"``.
        """
        n = len(self)
        self._require_search("sort")
        if field == "duration":
            keys = self.durations
        elif field == "status":  # by the status's name, as the rows spell it
            ranks = np.argsort(np.argsort([s.casefold() for s in self.statuses], kind="stable"))
            keys = ranks[self.status_codes]
        else:
            keys = self._keys.view[:, SORT_FIELDS.index(field)]
        if not descending:
            return self._stable_order(keys, field)
        # Stable and descending: sort the reversed rows ascending, then reverse that.
        backwards = self._stable_order(keys[::-1], field, slots=np.arange(n - 1, -1, -1))
        return (n - 1 - backwards)[::-1]

    def _stable_order(self, keys: np.ndarray, field: str, *, slots: np.ndarray | None = None) -> np.ndarray:
        order = np.argsort(keys, kind="stable")
        if keys.dtype.kind != "S" or len(order) < 2:
            return order
        # Equal prefixes whose texts run past them are settled by the whole (case-folded) text.
        ordered = keys[order]
        long = ordered.view(np.uint8).reshape(len(ordered), KEY_BYTES)[:, -1] != 0
        group = np.concatenate(([0], np.cumsum(ordered[1:] != ordered[:-1])))
        needs = np.full(group[-1] + 1, self._nul_in_texts, dtype=bool)
        needs[group[long]] = True
        sizes = np.bincount(group)
        column = FIELDS.index(field)
        for g in np.flatnonzero(needs & (sizes > 1)).tolist():
            lo = int(np.searchsorted(group, g))
            hi = lo + int(sizes[g])
            members = order[lo:hi]
            real = members if slots is None else slots[members]
            texts = [self.text(int(s), column).casefold() for s in real]
            order[lo:hi] = members[sorted(range(len(members)), key=texts.__getitem__)]
        return order

    # -- searching -------------------------------------------------------------------------------
    def _require_search(self, what: str) -> None:
        if not self.searchable:
            raise ValueError(f"This song table was made with searchable=False: it cannot {what}; "
                             "make it with searchable=True.")

    def search_text(self, slot: int) -> bytes:
        """A song's search text as UTF-8: its case-folded title, artist, album and path, one per line."""
        self._require_search("search")
        entry = int(self._entry.array[slot])
        start = int(self._entry_start.array[entry])
        end = int(self._entry_start.array[entry + 1]) if entry + 1 < self._entry_start.n else self._search.n
        return self._search.array[start:end - 1].tobytes()

    def search_index(self) -> TextIndex:
        """The search index over every entry so far (made again once too many songs changed since)."""
        self._require_search("search")
        if self._index is None or self._entry_start.n - self._indexed_entries > self.STALE_LIMIT:
            self._index = TextIndex(self._search.view, self._entry_start.view)
            self._indexed_entries = self._entry_start.n
        return self._index

    def slots_matching(self, words: Sequence[str], within: np.ndarray | None = None) -> np.ndarray:
        """Ascending slots (of ``within`` if given) whose search text holds every (case-folded) word."""
        self._require_search("search")
        if not words:
            return np.arange(len(self), dtype=np.int64) if within is None else within
        needles = [encode(w) for w in words]
        if (within is not None and len(within) <= self.SMALL) or len(self) <= 2000:
            candidates = range(len(self)) if within is None else within.tolist()
            return np.fromiter((s for s in candidates if all(n in self.search_text(s) for n in needles)),
                               dtype=np.int64)
        index = self.search_index()
        entries = index.rows_with_all(words)
        slots = self._entry_slot.array[entries]
        keep = np.zeros(len(self), dtype=bool)
        keep[slots[self._entry.array[slots] == entries]] = True  # an entry a song has replaced says nothing
        changed = np.flatnonzero(self._entry.view >= self._indexed_entries)  # checked one by one
        for slot in changed.tolist():
            keep[slot] = all(n in self.search_text(slot) for n in needles)
        if within is not None:
            wanted = np.zeros(len(self), dtype=bool)
            wanted[within] = True
            keep &= wanted
        return np.flatnonzero(keep)


class _Encoded(NamedTuple):
    text: bytes  # each song's four texts, one after another
    lengths: np.ndarray  # (m, 4) uint32: their lengths in bytes
    keys: np.ndarray  # (m, 3) S16: the case-folded title, artist and album's first bytes
    search: bytes  # each song's search text, NUL-terminated
    search_lengths: np.ndarray  # (m,) int64, with the NUL


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)


def _encode_texts(tracks: Sequence[Track], *, searchable: bool = True) -> _Encoded:
    """The songs' texts as :class:`SongTable` stores them: ASCII chunks (most tags) in a few calls for all.

    Without ``searchable`` only the four texts are made (``keys`` and ``search`` are empty).
    """
    columns = [[getattr(t, field) for t in tracks] for field in FIELDS]
    flat = [text for row in zip(*columns) for text in row]
    joined = "".join(flat)
    m = len(tracks)
    if not searchable:
        texts = [encode(t) for t in flat] if not joined.isascii() else None
        lengths = np.fromiter(map(len, texts or flat), dtype=np.uint32, count=4 * m).reshape(m, 4)
        data = joined.encode("ascii") if texts is None else b"".join(texts)
        return _Encoded(data, lengths, np.zeros((m, 0), f"S{KEY_BYTES}"), b"", np.zeros(m, np.int64))
    if joined.isascii() and "\x00" not in joined:  # a character is a byte; display_text changes nothing
        lengths = np.fromiter(map(len, flat), dtype=np.uint32, count=4 * m).reshape(m, 4)
        folded = ["\x00".join(column).casefold().split("\x00") for column in columns[:3]]
        keys = np.empty((m, 3), dtype=f"S{KEY_BYTES}")
        for k, column in enumerate(folded):
            keys[:, k] = column  # numpy keeps the first KEY_BYTES characters
        search = "".join(map("{}\n{}\n{}\n{}\x00".format, *folded, columns[3])).casefold()
        search_lengths = np.fromiter(map(len, columns[3]), dtype=np.int64, count=m) + 4
        search_lengths += lengths[:, :3].sum(axis=1, dtype=np.int64)
        return _Encoded(joined.encode("ascii"), lengths, keys, search.encode("ascii"), search_lengths)
    texts, lengths, keys, searches = [], [], [], []
    for row in zip(*columns):
        parts = [encode(t) for t in row]
        folded = [t.casefold() for t in row[:3]]
        texts.append(b"".join(parts))
        lengths.append([len(p) for p in parts])
        keys.append([encode(f)[:KEY_BYTES] for f in folded])
        searches.append(encode("\n".join((*folded, display_text(row[3]).casefold()))) + b"\x00")
    return _Encoded(b"".join(texts), np.array(lengths, dtype=np.uint32).reshape(m, 4),
                    np.array(keys, dtype=f"S{KEY_BYTES}").reshape(m, 3), b"".join(searches),
                    np.fromiter(map(len, searches), dtype=np.int64, count=m))


class TrackView(Sequence):
    """Songs of a table as ``Track``s made when read: in the order of ``slots``, or all in slot order."""

    def __init__(self, table: SongTable, slots: np.ndarray | None = None):
        self.table, self.slots = table, slots

    def __len__(self) -> int:
        return len(self.table) if self.slots is None else len(self.slots)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"song {i} of {len(self)}")
        return self.table.track(int(i if self.slots is None else self.slots[i]))

    def __iter__(self) -> Iterator[Track]:
        return (self[i] for i in range(len(self)))
