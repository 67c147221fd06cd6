"""Thin Qt item-model adapters over core data (``core.library.Track``)."""

from __future__ import annotations

import re

from typing import Iterable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from musicrec_gui.core.library import Track
from musicrec_gui.core.names import display_text

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
    """The song list: title, artist, album, duration, status. One row per ``Track``.

    Rows are kept in a plain list with an id → row map, so adding or updating a
    song as the scan finishes it is O(1); nothing is computed per paint beyond a
    field lookup.
    """

    COLUMNS = ("Title", "Artist", "Album", "Length", "Status")
    COLUMN_TIPS = ("The song's title from its tags (its file name when it has none); click to sort",
                   "The artist from the song's tags; click to sort",
                   "The album from the song's tags; click to sort",
                   "How long the song is; click to sort",
                   "Whether the song is analysed, waiting for the scan, or failed (hover a failed row for why); "
                   "click to sort")
    TITLE, ARTIST, ALBUM, DURATION, STATUS = range(5)

    def __init__(self, session=None, parent=None):
        super().__init__(parent)
        self._tracks: list[Track] = []
        self._row: dict[int, int] = {}
        self._haystack: list[str] = []
        self._reanalysing: set[int] = set()  # songs queued or being analysed again on request
        self._failed_brush = QBrush(QColor(200, 60, 60))
        self._pending_brush = QBrush(QColor(130, 130, 130))
        if session is not None:  # a gui.session.Session: the model follows its folder
            session.folderShown.connect(self.set_tracks)
            session.trackChanged.connect(self.upsert)

    # -- core-side API ------------------------------------------------------
    def set_tracks(self, tracks: Iterable[Track]) -> None:
        self.beginResetModel()
        self._tracks = list(tracks)
        self._row = {t.id: i for i, t in enumerate(self._tracks)}
        self._haystack = [self._search_text(t) for t in self._tracks]
        self.endResetModel()

    def upsert(self, track: Track) -> None:
        """Add a song, or refresh it if it is already listed."""
        row = self._row.get(track.id)
        if row is None:
            row = len(self._tracks)
            self.beginInsertRows(QModelIndex(), row, row)
            self._tracks.append(track)
            self._haystack.append(self._search_text(track))
            self._row[track.id] = row
            self.endInsertRows()
        else:
            self._tracks[row] = track
            self._haystack[row] = self._search_text(track)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    # -- sorting in Python (one C-level sorted() instead of a Qt comparison per pair) --
    def sort_key(self, column: int):
        if column == self.DURATION:
            return lambda t: float(t.duration)
        attribute = ("title", "artist", "album", "duration", "status")[column]
        return lambda t: getattr(t, attribute).casefold()

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.COLUMNS):
            return
        self.layoutAboutToBeChanged.emit()
        key = self.sort_key(column)
        order_rows = sorted(range(len(self._tracks)), key=lambda i: key(self._tracks[i]),
                            reverse=order == Qt.SortOrder.DescendingOrder)
        new_row = {old: new for new, old in enumerate(order_rows)}
        self._tracks = [self._tracks[i] for i in order_rows]
        self._haystack = [self._haystack[i] for i in order_rows]
        self._row = {t.id: i for i, t in enumerate(self._tracks)}
        old_indexes = self.persistentIndexList()
        new_indexes = [self.index(new_row[ix.row()], ix.column()) for ix in old_indexes]
        self.changePersistentIndexList(old_indexes, new_indexes)
        self.layoutChanged.emit()

    def set_reanalysing(self, track_ids, reanalysing: bool) -> None:
        """Mark songs as queued or being analysed again (their Status says so), or clear the mark."""
        for track_id in track_ids:
            if reanalysing:
                self._reanalysing.add(track_id)
            else:
                self._reanalysing.discard(track_id)
            row = self._row.get(track_id)
            if row is not None:
                self.dataChanged.emit(self.index(row, self.STATUS), self.index(row, self.STATUS))

    def is_reanalysing(self, track_id: int) -> bool:
        return track_id in self._reanalysing

    def row_of(self, track_id: int) -> int | None:
        return self._row.get(track_id)

    def tracks(self) -> Sequence[Track]:
        return self._tracks

    def haystack(self, row: int) -> str:
        return self._haystack[row]

    def track_at(self, row: int) -> Track:
        return self._tracks[row]

    @staticmethod
    def _search_text(track: Track) -> str:
        return f"{track.title}\n{track.artist}\n{track.album}\n{track.display_path}".casefold()

    # -- Qt model API -------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._tracks)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        track = self._tracks[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.TITLE:
                return track.title
            if column == self.ARTIST:
                return track.artist
            if column == self.ALBUM:
                return track.album
            if column == self.DURATION:
                return format_duration(track.duration)
            if track.id in self._reanalysing:
                return REANALYSING_TEXT
            return STATUS_TEXT.get(track.status, track.status)
        if role == TRACK_ROLE:
            return track
        if role == Qt.ItemDataRole.ToolTipRole:
            if track.id in self._reanalysing:
                return f"{track.display_path}\nBeing analysed again (Re-analyse); the result is shown when it is done."
            if track.status == "failed":
                return f"{track.display_path}\nFailed: {track.error}"
            return track.display_path
        if role == Qt.ItemDataRole.ForegroundRole:
            if track.status == "failed":
                return self._failed_brush
            if track.status == "pending" or track.id in self._reanalysing:
                return self._pending_brush
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.DURATION:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class SongFilterProxy(QSortFilterProxyModel):
    """Sorting by the source model and filtering by every word of the filter box.

    The filter matches against a precomputed lower-case text per row (title,
    artist, album, path), so typing stays fast with 50 000 songs.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._words: list[str] = []
        self._tag_words: list[str] = []
        # "|ambient|electronic|" per track id: the tags its chips show (``tag:amb`` matches "ambient").
        self.tag_text: dict[int, str] = {}
        self.setDynamicSortFilter(False)
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder

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
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9
            self.beginFilterChange()
            self._words, self._tag_words = words, tag_words
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._words, self._tag_words = words, tag_words
            self.invalidateRowsFilter()

    @property
    def filters_tags(self) -> bool:
        return bool(self._tag_words)

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        if not self._words and not self._tag_words:
            return True
        model = self.sourceModel()
        if self._words:
            text = model.haystack(source_row)
            if not all(word in text for word in self._words):
                return False
        if self._tag_words:
            tags = self.tag_text.get(model.track_at(source_row).id, "")
            return all(word in tags for word in self._tag_words)
        return True


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
