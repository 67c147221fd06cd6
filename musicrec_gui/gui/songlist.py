"""The song list: a filter box over a sortable table of the open folder's songs; picking a row sets the anchor."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, QLocale, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QLineEdit, QTableView, QVBoxLayout, QWidget

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.tags import SongTags
from musicrec_gui.gui.engine import Engine, Reanalysed, ReanalysisFinished, ReanalysisQueued, Seeded
from musicrec_gui.gui.models import TRACK_ROLE, SongFilterProxy, SongTableModel
from musicrec_gui.gui.session import Session

LARGE_LIBRARY_ROWS = 5000
FILTER_DEBOUNCE_MS = 150


class SongListPanel(QWidget):
    """Filter, table and song count, following ``session`` and the scans of ``engine``.

    The anchor changes only when the user picks another song: a filter that hides the anchor
    leaves it (and its spectrogram and neighbours) as they are.
    """

    def __init__(self, session: Session, engine: Engine, actions=None, jobs=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.jobs = jobs  # a gui.tasks.BackgroundJobs: the songs' tags for ``tag:`` are read there
        self.actions = actions  # a gui.actions.SongActions: double-click, Enter and the context menu
        self.model = SongTableModel(session, self)
        self.proxy = SongFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText("Filter by title, artist, album or path… or tag:ambient")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.setToolTip("Show only the songs whose title, artist, album or path contain every word "
                                   "typed here (Ctrl+F).\ntag:NAME keeps the songs tagged NAME "
                                   "(tag:\"hard rock\" for a tag of two words).")
        # With a large library a filter pass takes up to ~0.1 s (a million songs): wait for a pause in typing.
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DEBOUNCE_MS)
        self._filter_timer.timeout.connect(lambda: self._apply_filter(self.filter_box.text()))
        self._filtering = False
        self.view = view = QTableView()
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(SongTableModel.TITLE, Qt.SortOrder.AscendingOrder)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setAlternatingRowColors(True)
        view.setWordWrap(False)
        view.verticalHeader().hide()
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(48)
        header.setSectionResizeMode(SongTableModel.TITLE, QHeaderView.ResizeMode.Stretch)
        header.sectionResized.connect(self._on_section_resized)
        self._columns_set_by_user = False
        view.installEventFilter(self)
        self.count_label = QLabel("")
        self.count_label.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_box)
        layout.addWidget(view, 1)
        layout.addWidget(self.count_label)

        if actions is not None:
            view.doubleClicked.connect(lambda index: actions.play_as_anchor(index.data(TRACK_ROLE)))
            for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                shortcut = QShortcut(QKeySequence(key), view, context=Qt.ShortcutContext.WidgetShortcut)
                shortcut.activated.connect(self._play_current)
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            view.customContextMenuRequested.connect(self._on_context_menu)
        self.filter_box.textChanged.connect(self._on_filter_changed)
        view.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                       self.proxy.layoutChanged):
            signal.connect(self._update_count)
        session.folderShown.connect(self._on_folder_shown)
        session.folderLoading.connect(self._on_folder_loading)
        session.tracksLoaded.connect(self._on_tracks_loaded)
        session.anchorChanged.connect(self._on_anchor_changed)
        session.analysisChanged.connect(lambda _settings: self._load_tags())
        session.filterRequested.connect(self.filter_box.setText)
        engine.event.connect(self._on_engine_event)
        self._tags_token = 0
        self._fresh_tags: dict[int, str] = {}

    # -- following the session and the scan ------------------------------------------
    def _on_folder_shown(self, _tracks) -> None:
        self.resort()
        self._on_anchor_changed(self.session.anchor)
        self._load_tags()
        if self.model.rowCount() > LARGE_LIBRARY_ROWS:  # the filter's index, before the first keystroke
            QTimer.singleShot(0, self.model.search_index)

    def _on_folder_loading(self, _first) -> None:
        """A large folder's first songs: shown sorted at once; the rest follow, and are sorted at the end."""
        self.resort()
        self._on_anchor_changed(self.session.anchor)

    def _on_tracks_loaded(self, _chunk) -> None:
        # The anchor may only now have come in: select it (if the filter shows it) as when picked.
        anchor = self.session.anchor
        current = self.view.currentIndex().data(TRACK_ROLE)
        if anchor is not None and (current is None or current.id != anchor.id):
            self._filtering = True  # selecting the anchor's row is not the user picking a song
            try:
                self.select_track(anchor.id)
            finally:
                self._filtering = False

    def _load_tags(self) -> None:
        """Read every song's tags for ``tag:`` (one query, in a worker: 100 000 songs take 1–2 s)."""
        self._tags_token += 1
        self._fresh_tags = {}
        token, session = self._tags_token, self.session
        if self.jobs is None or not session.tag_names or not session.folder:
            self.proxy.tags = SongTags(session.tag_names)
            return
        library, folder, names = session.library, session.folder, session.tag_names
        keys = {"encoder_key": session.encoder_key, "analysis_key": session.analysis.key}

        def read():
            return SongTags.from_chunks(library.iter_tags(under=folder, **keys), names)

        def done(tags: SongTags):
            if token == self._tags_token:
                for track_id, fresh in self._fresh_tags.items():  # songs analysed while this was read
                    tags.set(track_id, fresh)
                self.proxy.tags = tags
                if self.proxy.filters_tags:
                    self.proxy.set_filter_text(self.filter_box.text(), force=True)

        self.jobs.submit(read, done, lambda _err: None)

    def _on_anchor_changed(self, track) -> None:
        current = self.view.currentIndex().data(TRACK_ROLE)
        if track is None:
            if current is not None:
                self._clear_current()
        elif (current is None or current.id != track.id) and not self.select_track(track.id) \
                and current is not None:
            # The new anchor is not in the list as filtered: no row may look selected, or clicking
            # that row (the old anchor) would not pick it again.
            self._clear_current()

    def _on_engine_event(self, event) -> None:
        done = event.result if isinstance(event, Reanalysed) else event
        if isinstance(done, scan_mod.TrackDone) and self.session.tag_names:
            names = tuple(name for name, _ in self.session.song_tags(done.track))
            self.proxy.tags.set(done.track.id, names)
            self._fresh_tags[done.track.id] = names
        if isinstance(event, ReanalysisQueued):
            self.model.set_reanalysing(event.track_ids, True)
        elif isinstance(event, Reanalysed):
            self.model.set_reanalysing((event.track_id,), False)
        elif isinstance(event, ReanalysisFinished):
            self.model.set_reanalysing(event.track_ids, False)
        elif isinstance(event, Seeded) and self.session.anchor is None:
            self.select_first_analysed()  # the demo, shown analysed before the encoder has loaded
        if isinstance(event, scan_mod.ScanFinished):
            if event.analysed:
                self.resort()  # titles and artists came from the tags
            if self.session.anchor is None:
                self.select_first_analysed()

    # -- columns and sorting ---------------------------------------------------------------
    COLUMN_SHARES = (0.46, 0.18, 0.18, 0.0, 0.0)  # of the list's width, until the user drags one
    COLUMN_MINIMUMS = (120, 60, 60, 52, 64)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.view and event.type() == QEvent.Type.Resize and not self._columns_set_by_user:
            self._fit_columns(event.size().width())
        return False

    def _fit_columns(self, width: int) -> None:
        header = self.view.horizontalHeader()
        self._fitting = True
        try:
            for column in range(1, len(self.COLUMN_SHARES)):  # the title stretches into what is left
                # Never narrower than the column's own heading (plus the sort arrow).
                heading = header.fontMetrics().horizontalAdvance(SongTableModel.COLUMNS[column]) + 26
                header.resizeSection(column, max(self.COLUMN_MINIMUMS[column], heading,
                                                 int(width * self.COLUMN_SHARES[column])))
        finally:
            self._fitting = False

    def _on_section_resized(self, column: int, _old: int, _new: int) -> None:
        if column != SongTableModel.TITLE and not getattr(self, "_fitting", False) and self.isVisible():
            self._columns_set_by_user = True

    def sort_by(self, column: int, *, descending: bool = False) -> None:
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.view.sortByColumn(column if 0 <= column < self.model.columnCount() else 0, order)

    def sort_order(self) -> tuple[int, bool]:
        """(column, descending) as the header shows it."""
        header = self.view.horizontalHeader()
        return header.sortIndicatorSection(), header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder

    def _clear_current(self) -> None:
        """No row selected or current (the anchor is left as it is)."""
        self.view.selectionModel().clearSelection()
        self.view.selectionModel().setCurrentIndex(self.proxy.index(-1, -1), QItemSelectionModel.SelectionFlag.Clear)

    def resort(self) -> None:
        header = self.view.horizontalHeader()
        self.proxy.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())

    # -- the user -------------------------------------------------------------------------
    def _play_current(self) -> None:
        track = self.view.currentIndex().data(TRACK_ROLE)
        if track is not None:
            self.actions.play_as_anchor(track)

    def _on_context_menu(self, position) -> None:
        index = self.view.indexAt(position)
        track = index.data(TRACK_ROLE) if index.isValid() else None
        if track is not None:
            self.actions.menu_for(track, self).popup(self.view.viewport().mapToGlobal(position))

    def _on_filter_changed(self, text: str) -> None:
        if self.model.rowCount() > LARGE_LIBRARY_ROWS:
            self._filter_timer.start()
        else:
            self._apply_filter(text)

    def _apply_filter(self, text: str) -> None:
        # Hiding the current row makes Qt move "current" to a neighbour: that is not the user
        # picking a song, so the anchor stays, and is selected again once it is shown.
        self._filtering = True
        try:
            self.proxy.set_filter_text(text)
            self._update_count()
        finally:
            self._filtering = False
        anchor = self.session.anchor
        if anchor is None or not self.select_track(anchor.id):
            self._clear_current()

    def _update_count(self, *args) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        number = QLocale().toString  # "1,000,000" (as the user's locale writes it), not "1000000"
        text = f"{number(total)} songs" if shown == total else f"{number(shown)} of {number(total)} songs shown"
        if self.proxy.filters_tags and not self.session.tag_names:
            text += " · this encoder gives no tags, so tag: matches nothing (the default encoder does)"
        self.count_label.setText(text)

    def _on_current_row_changed(self, current, _previous) -> None:
        if self._filtering:
            return
        if current.isValid():  # an invalid one: the row was filtered out, not another song picked
            self.session.set_anchor(current.data(TRACK_ROLE))

    def select_track(self, track_id: int | None) -> bool:
        """Select a song in the list (``None`` clears the anchor); False if it is not shown."""
        if track_id is None:
            self.session.set_anchor(None)
            return True
        row = self.model.row_of(track_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.view.scrollTo(index)
        return True

    def select_first_analysed(self) -> None:
        for row in range(self.proxy.rowCount()):
            track = self.proxy.index(row, 0).data(TRACK_ROLE)
            if track.status == "done":
                self.select_track(track.id)
                return
