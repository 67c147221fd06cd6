"""Thin Qt item-model adapters over core data (``core.songtable.SongTable``, ``core.library.Track``)."""

from __future__ import annotations

import re

from typing import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QAbstractProxyModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from musicrec_gui.core.library import Track
from musicrec_gui.core.names import display_text
from musicrec_gui.core.songtable import FIELDS, SongTable, TrackView, with_room
from musicrec_gui.core.tags import SongTags

PATH_FIELD = FIELDS.index("path")

TRACK_ROLE = Qt.ItemDataRole.UserRole + 2

STATUS_TEXT = {"done": "analysed", "pending": "waiting", "failed": "failed"}
REANALYSING_TEXT = "updating"  # queued or being analysed again on request (as narrow as "analysed")


def format_duration(seconds: float) -> str:
    if not seconds or seconds <= 0:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ColumnTableModel(QAbstractTableModel):
    """A flat table whose column titles are the class's ``COLUMNS``."""

    COLUMNS: tuple[str, ...] = ()
    COLUMN_TIPS: tuple[str, ...] = ()  # what each column shows, as the header's tooltip

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole \
                and section < len(self.COLUMN_TIPS):
            return self.COLUMN_TIPS[section]
        return None


class SongTableModel(ColumnTableModel):
    """The song list: title, artist, album, duration, status, over a ``core.songtable.SongTable``.

    With a session the table is the session's (the open folder's songs, read once); rows are the
    table's slots in the order sorted, so adding or updating a song as the scan finishes it is
    O(1), sorting is a numpy argsort, and a row's texts are read only when it is painted.
    """

    COLUMNS = ("Title", "Artist", "Album", "Length", "Status")
    COLUMN_TIPS = ("The song's title from its tags (its file name when it has none); click to sort",
                   "The artist from the song's tags; click to sort",
                   "The album from the song's tags; click to sort",
                   "How long the song is; click to sort",
                   "Whether the song is analysed, waiting for the scan, or failed (hover a failed row for why); "
                   "click to sort")
    TITLE, ARTIST, ALBUM, DURATION, STATUS = range(5)
    SORT_FIELDS = ("title", "artist", "album", "duration", "status")

    def __init__(self, session=None, parent=None):
        super().__init__(parent)
        self.table = SongTable()
        self._order = np.zeros(0, dtype=np.int64)  # the slot shown in each row
        self._row_of_slot = np.zeros(0, dtype=np.int64)
        self._reanalysing: set[int] = set()  # songs queued or being analysed again on request
        self._failed_brush = QBrush(QColor(200, 60, 60))
        self._pending_brush = QBrush(QColor(130, 130, 130))
        if session is not None:  # a gui.session.Session: the model shows its songs
            session.folderShown.connect(self._on_folder_shown)
            session.folderLoading.connect(self._on_folder_loading)
            session.tracksLoaded.connect(lambda _chunk: self._add_new_rows())  # the session's table has them
            session.trackChanged.connect(self._on_track_changed)
        self._session = session

    def _on_folder_loading(self, _first) -> None:
        self._show(self._session.songs)

    def _on_folder_shown(self, _tracks) -> None:
        if getattr(self._session, "completing_chunks", False):
            return  # the rows are in already (and songs analysed meanwhile are newer)
        self._show(self._session.songs)

    # -- core-side API ------------------------------------------------------
    def _show(self, table: SongTable) -> None:
        self.beginResetModel()
        self.table = table
        self._order = np.arange(len(table), dtype=np.int64)
        self._row_of_slot = self._order.copy()
        self.endResetModel()

    def set_tracks(self, tracks: Iterable[Track]) -> None:
        """Show these songs (in a table of the model's own, apart from the session's)."""
        self._show(SongTable(tracks))

    def append_tracks(self, tracks: Sequence[Track] = ()) -> None:
        """Add songs at the end (a large folder's next chunk); songs listed already are left as they are."""
        self.table.extend(tracks)
        self._add_new_rows()

    def _add_new_rows(self) -> None:
        """Rows at the end for the table's slots added since (a session's table grows before its signals)."""
        first, n = len(self._order), len(self.table)
        if n <= first:
            return
        self.beginInsertRows(QModelIndex(), first, n - 1)
        # Views of n rows over buffers with room: a scan adding songs one by one to a million copies
        # nothing most of the time (a concatenation per song would copy 16 MB each time).
        self._order, self._row_of_slot = with_room(self._order, n), with_room(self._row_of_slot, n)
        self._order[first:n] = self._row_of_slot[first:n] = np.arange(first, n, dtype=np.int64)
        self.endInsertRows()

    def upsert(self, track: Track) -> None:
        """Add a song, or refresh it if it is already listed."""
        self._show_change(self.table.upsert(track)[0])

    def _on_track_changed(self, track: Track) -> None:
        if self.table is not self._session.songs:  # songs set apart from the session's (set_tracks)
            return self.upsert(track)
        slot = self.table.slot_of(track.id)  # the session's table has the song as it is now
        if slot is not None:
            self._show_change(slot)
        return None

    def _show_change(self, slot: int) -> None:
        if slot >= len(self._order):
            self._add_new_rows()
        else:
            row = int(self._row_of_slot[slot])
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.COLUMNS):
            return
        self._add_new_rows()
        self.layoutAboutToBeChanged.emit()
        old_order = self._order
        self._order = self.table.sort_order(self.SORT_FIELDS[column],
                                            descending=order == Qt.SortOrder.DescendingOrder)
        self._row_of_slot = np.empty(len(self._order), dtype=np.int64)
        self._row_of_slot[self._order] = np.arange(len(self._order))
        new_row = self._row_of_slot[old_order]  # old row -> new row
        old_indexes = self.persistentIndexList()
        new_indexes = [self.index(int(new_row[ix.row()]), ix.column()) for ix in old_indexes]
        self.changePersistentIndexList(old_indexes, new_indexes)
        self.layoutChanged.emit()

    def set_reanalysing(self, track_ids, reanalysing: bool) -> None:
        """Mark songs as queued or being analysed again (their Status says so), or clear the mark."""
        for track_id in track_ids:
            if reanalysing:
                self._reanalysing.add(track_id)
            else:
                self._reanalysing.discard(track_id)
            row = self.row_of(track_id)
            if row is not None:
                self.dataChanged.emit(self.index(row, self.STATUS), self.index(row, self.STATUS))

    def is_reanalysing(self, track_id: int) -> bool:
        return track_id in self._reanalysing

    def row_of(self, track_id: int) -> int | None:
        slot = self.table.slot_of(track_id)
        return None if slot is None or slot >= len(self._order) else int(self._row_of_slot[slot])

    def tracks(self) -> Sequence[Track]:
        """The listed songs in row order (each ``Track`` made when read)."""
        return TrackView(self.table, self._order)

    def haystack(self, row: int) -> str:
        return self.table.search_text(int(self._order[row])).decode("utf-8", "surrogatepass")

    def track_at(self, row: int) -> Track:
        return self.table.track(int(self._order[row]))

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """The track ids of ``rows``, shape (len(rows),)."""
        return self.table.ids[self._order[rows]]

    def search_index(self):
        """The filter's index (built here once, before the first keystroke, for a large folder)."""
        return self.table.search_index()

    def rows_matching(self, words: Sequence[str], within: np.ndarray | None = None) -> np.ndarray:
        """Ascending rows whose search text contains every word (of ``within`` if given)."""
        if not words:
            return np.arange(len(self._order), dtype=np.int64) if within is None else within
        slots = self.table.slots_matching(words, None if within is None else self._order[within])
        rows = self._row_of_slot[slots[slots < len(self._order)]]
        if len(rows) < len(self._order) // 64:
            return np.sort(rows)
        keep = np.zeros(len(self._order), dtype=bool)
        keep[rows] = True
        return np.flatnonzero(keep)

    # -- Qt model API -------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._order)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        slot = int(self._order[index.row()])
        table, column = self.table, index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column <= self.ALBUM:
                return table.text(slot, column)
            if column == self.DURATION:
                return format_duration(float(table.durations[slot]))
            if int(table.ids[slot]) in self._reanalysing:
                return REANALYSING_TEXT
            status = table.status(slot)
            return STATUS_TEXT.get(status, status)
        if role == TRACK_ROLE:
            return table.track(slot)
        if role == Qt.ItemDataRole.ToolTipRole:
            path = display_text(table.text(slot, PATH_FIELD))
            if int(table.ids[slot]) in self._reanalysing:
                return f"{path}\nBeing analysed again (Re-analyse); the result is shown when it is done."
            if table.status(slot) == "failed":
                return f"{path}\nFailed: {table.error(slot)}"
            return path
        if role == Qt.ItemDataRole.ForegroundRole:
            status = table.status(slot)
            if status == "failed":
                return self._failed_brush
            if status == "pending" or int(table.ids[slot]) in self._reanalysing:
                return self._pending_brush
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.DURATION:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class SongFilterProxy(QAbstractProxyModel):
    """Sorting by the source model and filtering by every word of the filter box.

    The shown rows are an ascending array of source rows (None: all of them), computed in one
    vectorised pass over the model's search text (:meth:`SongTableModel.rows_matching`), so Qt
    never calls Python once per row: filtering a million songs takes a fraction of a second, and
    typing more letters filters within the songs already shown.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._words: list[str] = []
        self._tag_words: list[str] = []
        # The tags each song's chips show (``tag:amb`` matches "ambient"), read by the song list.
        self.tags = SongTags(())
        self._rows: np.ndarray | None = None
        self._count = 0
        self._narrowable = False  # ``_rows`` is still right for ``_words`` (nothing changed since)
        self._saved: list = []
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder

    # -- following the source model -----------------------------------------------
    def setSourceModel(self, model) -> None:
        old = self.sourceModel()
        if old is not None:
            for signal, slot in self._connections(old):
                signal.disconnect(slot)
        self.beginResetModel()
        super().setSourceModel(model)
        if model is not None:
            for signal, slot in self._connections(model):
                signal.connect(slot)
        self._refilter()
        self.endResetModel()

    def _connections(self, model):
        return ((model.modelAboutToBeReset, self._on_about_to_reset), (model.modelReset, self._on_reset),
                (model.rowsInserted, self._on_rows_inserted), (model.dataChanged, self._on_data_changed),
                (model.layoutAboutToBeChanged, self._on_layout_about), (model.layoutChanged, self._on_layout),
                (model.rowsRemoved, self._on_rows_removed))

    def _on_about_to_reset(self) -> None:
        self.beginResetModel()

    def _on_reset(self) -> None:
        self._refilter()
        self.endResetModel()

    def _on_rows_removed(self, *_args) -> None:  # the song list never removes rows; be right anyway
        self.beginResetModel()
        self._refilter()
        self.endResetModel()

    def _on_rows_inserted(self, parent, first: int, last: int) -> None:
        self._narrowable = False
        if parent.isValid():
            return
        if first != self._source_count_before(last - first + 1):
            self._on_rows_removed()
            return
        if self._rows is None:
            self.beginInsertRows(QModelIndex(), self._count, self._count + last - first)
            self._count += last - first + 1
            self.endInsertRows()
            return
        new = self._matching(np.arange(first, last + 1, dtype=np.int64))
        if len(new):
            at = len(self._rows)
            self.beginInsertRows(QModelIndex(), at, at + len(new) - 1)
            self._rows = np.concatenate((self._rows, new))
            self._count = len(self._rows)
            self.endInsertRows()

    def _source_count_before(self, added: int) -> int:
        return self.sourceModel().rowCount() - added

    def _on_data_changed(self, top_left, bottom_right, roles=()) -> None:
        self._narrowable = False  # a changed song is filtered again by the next pass, not now
        first, last = top_left.row(), bottom_right.row()
        if self._rows is None:
            lo, hi = first, last
        else:
            lo = int(np.searchsorted(self._rows, first))
            hi = int(np.searchsorted(self._rows, last, side="right")) - 1
            if hi < lo:
                return
        self.dataChanged.emit(self.index(lo, top_left.column()), self.index(hi, bottom_right.column()), roles)

    def _on_layout_about(self, *_args) -> None:
        self.layoutAboutToBeChanged.emit()
        self._saved = [(QModelIndex(index), QPersistentModelIndex(self.mapToSource(index)))
                       for index in self.persistentIndexList()]

    def _on_layout(self, *_args) -> None:
        self._refilter()
        self._restore_persistent()
        self.layoutChanged.emit()

    def _restore_persistent(self) -> None:
        saved, self._saved = self._saved, []
        if saved:
            model = self.sourceModel()
            self.changePersistentIndexList(
                [old for old, _ in saved],
                [self.mapFromSource(model.index(src.row(), src.column())) if src.isValid() else QModelIndex()
                 for _, src in saved])

    # -- filtering -----------------------------------------------------------------
    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is done by the source model in Python: fast with 50 000 songs.

        Songs added later are appended (a scan adds them as they finish); clicking the
        header sorts again."""
        self._sort_column, self._sort_order = column, order
        if self.sourceModel() is not None:
            self.sourceModel().sort(column, order)

    def set_filter_text(self, text: str, *, force: bool = False) -> None:
        """Filter by every word; ``tag:NAME`` keeps songs whose tags include NAME (``tag:"hard rock"`` too).

        ``force`` filters again with the same words (the songs' tags changed).
        """
        words, tag_words = filter_words(text)
        if (words, tag_words) == (self._words, self._tag_words) and not force:
            return
        within = None
        if not force and self._narrowable and self._rows is not None and _narrows(self._words, words) \
                and _narrows(self._tag_words, tag_words):
            within = self._rows  # every song shown now still needs the old words: look only among them
        self.layoutAboutToBeChanged.emit()
        self._saved = [(QModelIndex(index), QPersistentModelIndex(self.mapToSource(index)))
                       for index in self.persistentIndexList()]
        self._words, self._tag_words = words, tag_words
        self._refilter(within)
        self._restore_persistent()
        self.layoutChanged.emit()

    @property
    def filters_tags(self) -> bool:
        return bool(self._tag_words)

    def _refilter(self, within: np.ndarray | None = None) -> None:
        model = self.sourceModel()
        if model is None or (not self._words and not self._tag_words):
            self._rows = None
            self._count = 0 if model is None else model.rowCount()
        else:
            self._rows = self._matching(within)
            self._count = len(self._rows)
        self._narrowable = self._rows is not None

    def _matching(self, within: np.ndarray | None) -> np.ndarray:
        """Ascending source rows (of ``within``, or all) that the filter keeps."""
        model = self.sourceModel()
        rows = model.rows_matching(self._words, within)
        if self._tag_words:
            rows = rows[self.tags.having_all(model.ids_at(rows), self._tag_words)]
        return rows

    def filterAcceptsRow(self, source_row: int, _source_parent=None) -> bool:
        """Whether the filter keeps a row (the rule the vectorised pass follows; for tests and single rows)."""
        model = self.sourceModel()
        if self._words:
            text = model.haystack(source_row)
            if not all(word in text for word in self._words):
                return False
        if self._tag_words:
            return bool(self.tags.having_all(model.ids_at(np.array([source_row])), self._tag_words)[0])
        return True

    # -- Qt proxy API ----------------------------------------------------------------
    def mapToSource(self, proxy_index):
        model = self.sourceModel()
        if model is None or not proxy_index.isValid():
            return QModelIndex()
        row = proxy_index.row()
        if row >= self._count:
            return QModelIndex()
        return model.index(row if self._rows is None else int(self._rows[row]), proxy_index.column())

    def mapFromSource(self, source_index):
        if not source_index.isValid():
            return QModelIndex()
        row = source_index.row()
        if self._rows is None:
            return self.index(row, source_index.column()) if row < self._count else QModelIndex()
        at = int(np.searchsorted(self._rows, row))
        if at < len(self._rows) and self._rows[at] == row:
            return self.index(at, source_index.column())
        return QModelIndex()

    def index(self, row: int, column: int, parent=QModelIndex()):
        if parent.isValid() or not (0 <= row < self._count and 0 <= column < self.columnCount()):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, child=None):
        if child is None:
            return super().parent()
        return QModelIndex()

    def sibling(self, row: int, column: int, index):
        return self.index(row, column)

    def hasChildren(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and self._count > 0

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent=QModelIndex()) -> int:
        model = self.sourceModel()
        return 0 if parent.isValid() or model is None else model.columnCount()

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        model = self.sourceModel()
        if model is None or not index.isValid():
            return None
        return model.data(self.mapToSource(index), role)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        model = self.sourceModel()
        if orientation == Qt.Orientation.Horizontal and model is not None:
            return model.headerData(section, orientation, role)
        if role == Qt.ItemDataRole.DisplayRole:
            return section + 1
        return None


def _narrows(old: list[str], new: list[str]) -> bool:
    """Whether every text with all ``new`` words has all ``old`` ones (each old word is inside a new one)."""
    return all(any(o in n for n in new) for o in old)


def filter_words(text: str) -> tuple[list[str], list[str]]:
    """Plain words and ``tag:`` words of a filter, case-folded; quotes keep a tag of several words.

    Only a quote right after ``tag:`` groups words (one still being typed runs to the end); an
    apostrophe or a backslash elsewhere is part of the word, as in a title or a path.
    """
    words, tag_words = [], []
    for found in _FILTER_PARTS.finditer(text.casefold()):
        quoted, part = found.groups()
        if quoted is not None or part.startswith("tag:"):
            tag = (part[4:] if quoted is None else quoted).strip()
            if tag:
                tag_words.append(tag)
        else:
            words.append(part)
    return words, tag_words


_FILTER_PARTS = re.compile(r'tag:"([^"]*)"?|(\S+)')


class FailureTableModel(ColumnTableModel):
    """Files the scan could not analyse: path and reason."""

    COLUMNS = ("File", "Reason")
    COLUMN_TIPS = ("The file that could not be analysed", "Why it could not be analysed (hover for the whole text)")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, str]] = []
        self._index: dict[str, int] = {}

    def set_failures(self, failures: Iterable[tuple[str, str]]) -> None:
        self.beginResetModel()
        self._rows = []
        self._index = {}
        for path, reason in failures:
            self._index[path] = len(self._rows)
            self._rows.append((path, reason))
        self.endResetModel()

    def add(self, path: str, reason: str) -> None:
        row = self._index.get(path)
        if row is not None:
            self._rows[row] = (path, reason)
            self.dataChanged.emit(self.index(row, 0), self.index(row, 1))
            return
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append((path, reason))
        self._index[path] = row
        self.endInsertRows()

    def remove(self, path: str) -> None:
        """Forget a file's failure (it was analysed again, successfully)."""
        row = self._index.get(path)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._index = {p: i for i, (p, _) in enumerate(self._rows)}
        self.endRemoveRows()

    def failures(self) -> list[tuple[str, str]]:
        return list(self._rows)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        path, reason = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = path if index.column() == 0 else reason
            return display_text(text)
        return None
