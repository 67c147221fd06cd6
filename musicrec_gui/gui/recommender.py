"""The open folder's vector index, kept current as the scan finishes songs, and queries on it."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.explore import passage_neighbours, patches_in
from musicrec_gui.core.library import Track
from musicrec_gui.core.recommend import Recommendation, VectorIndex
from musicrec_gui.core.playback import clock_text
from musicrec_gui.gui.engine import Engine, Reanalysed
from musicrec_gui.gui.session import Session
from musicrec_gui.gui.tasks import BackgroundJobs


MODE_NAMES = {"spread": "8 moments across the song", "excerpt": "30 s excerpt", "full": "whole song"}


@dataclass(frozen=True)
class Query:
    """What the user asked: the neighbours of ``anchor``, ``count`` of them, with these exclusions."""

    anchor: Track
    count: int = 2
    exclude_same_artist: bool = False
    exclude_same_album: bool = False
    passage: tuple[float, float] | None = None  # seconds of the anchor: songs with a moment like it


@dataclass(frozen=True)
class Answer:
    """Recommendations for a query, or a message saying why there are none."""

    query: Query
    recommendations: list[Recommendation] = field(default_factory=list)
    message: str = ""  # why there are no recommendations
    note: str = ""  # said above recommendations that come with a caveat


class Recommender(QObject):
    """Answers :class:`Query`\\ s for the open folder, in exactly the songs ``musicrec similar --folder`` searches.

    The index is built in a worker once per folder and analysis (``VectorIndex.from_library``
    with ``under=folder``); each song the scan finishes is added to it (``VectorIndex.add``), so
    a click during a scan never pays a rebuild.
    """

    answered = Signal(object)  # Answer
    indexChanged = Signal()  # songs were added: shown answers may be out of date

    def __init__(self, session: Session, engine: Engine, jobs: BackgroundJobs, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.jobs = jobs
        self.index: VectorIndex | None = None
        self._building = False
        self._generation = 0  # bumped when the folder or analysis changes: an older build is dropped
        self._waiting: Query | None = None
        self._added_while_building: list[tuple[Track, object]] = []
        self._added_since_answer = False
        self._unanswered: Query | None = None  # its anchor had no vector yet when asked
        # After a change of analysis mode, the old vectors answer for songs the rescan has not
        # reached yet: (mode, index of the old vectors, or None until built).
        self._previous: tuple[str, VectorIndex | None] | None = None
        self._folder, self._mode = session.folder, session.analysis.mode
        session.folderShown.connect(self._on_folder_shown)
        session.analysisChanged.connect(self._on_analysis_changed)
        engine.event.connect(self._on_engine_event)

    def _on_folder_shown(self, _tracks) -> None:
        if self.session.folder != self._folder:
            self._folder, self._previous = self.session.folder, None
        self.invalidate()

    def _on_analysis_changed(self, settings) -> None:
        if self._previous is None or self._previous[0] != settings.mode:
            self._previous = (self._mode, self.index)
        else:  # back to the mode whose vectors were kept: nothing older to fall back on
            self._previous = None
        self._mode = settings.mode
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the index; the next query builds it again."""
        self._generation += 1
        self.index = None
        self._building = False
        self._added_while_building = []

    def ask(self, query: Query) -> None:
        """Answer ``query`` (through ``answered``) now, or once the index is built."""
        track = query.anchor
        if track.status == "failed":
            return self.answered.emit(Answer(query, message=f"This song could not be analysed: {track.error}"))
        if track.status != "done":
            if self._previous is not None:
                return self._answer_from_previous(query)
            return self.answered.emit(Answer(query, message="This song has not been analysed yet; "
                                                            "it will be when the scan reaches it."))
        if self.index is None:
            self._waiting = query
            self.answered.emit(Answer(query, message="Finding similar songs…"))
            self._build()
            return
        self.answered.emit(self._answer(query))

    def _answer(self, query: Query) -> Answer:
        index, track = self.index, query.anchor
        self._unanswered = None
        if track.id not in index:
            # The engine's event may reach the session (the anchor became "done") before it reaches us.
            self._unanswered = query
            return Answer(query, message="This song has no vector for the current encoder and analysis mode yet; "
                                         "it will have one when the scan reaches it.")
        if query.passage is not None:
            return self._answer_passage(query)
        return Answer(query, index.similar(track.id, k=query.count, exclude_same_artist=query.exclude_same_artist,
                                           exclude_same_album=query.exclude_same_album))

    def _answer_passage(self, query: Query, index: VectorIndex | None = None,
                        settings: AnalysisSettings | None = None) -> Answer:
        """Songs with a moment like part of the anchor, from the moments the library already holds
        (of the analysis in use, or of ``settings`` with their ``index``)."""
        session, track = self.session, query.anchor
        index = self.index if index is None else index
        settings = session.analysis if settings is None else settings
        keys = {"encoder_key": session.encoder_key, "analysis_key": settings.key}
        moments = session.song_moments(track, settings=settings)
        if moments is None:
            return Answer(query, message="This song's analysed moments are not in the library; scan it again.")
        vectors, spans = moments
        used = patches_in(spans, *query.passage)
        found = passage_neighbours(index, session.library, anchor_id=track.id, passage=vectors[used],
                                   k=query.count, exclude_same_artist=query.exclude_same_artist,
                                   exclude_same_album=query.exclude_same_album, settings=settings,
                                   features=session.encoder_features, **keys)
        start, end = query.passage
        inside = all(start - 0.5 <= spans[i, 0] and spans[i, 1] <= end + 0.5 for i in used)
        where = "" if inside else (
            f" The encoder analysed no moment inside your selection ({MODE_NAMES.get(settings.mode, '')}); "
            f"the nearest one, at {clock_text(spans[used[0], 0])}, stands for it.")
        return Answer(query, found, note=f"Each plays from its moment most like {clock_text(start)}–"
                                         f"{clock_text(end)} of this song.{where}")

    def _answer_from_previous(self, query: Query) -> None:
        mode, index = self._previous
        if index is None:  # built once, in a worker, from the vectors of the previous mode
            generation, library, folder = self._generation, self.session.library, self.session.folder
            key = AnalysisSettings(mode=mode).key
            encoder_key = self.session.encoder_key
            self.answered.emit(Answer(query, message="Finding similar songs…"))

            def build():
                return VectorIndex.from_library(library, encoder_key=encoder_key, analysis_key=key, under=folder)

            def built(old: VectorIndex) -> None:
                if generation == self._generation and self._previous is not None and self._previous[0] == mode:
                    self._previous = (mode, old)
                    self._answer_from_previous(query)

            def failed(err: BaseException) -> None:
                if generation == self._generation:
                    self.answered.emit(Answer(query, message=f"Cannot compute recommendations: {err}"))

            self.jobs.submit(build, built, failed)
            return
        track = query.anchor
        if track.id not in index:
            self.answered.emit(Answer(query, message="This song has not been analysed yet; "
                                                     "it will be when the scan reaches it."))
            return
        previous = f"From the previous analysis ({MODE_NAMES.get(mode, mode)}) until the rescan reaches this song."
        if query.passage is not None:  # its moments as that analysis placed them
            answer = self._answer_passage(query, index=index, settings=AnalysisSettings(mode=mode))
            self.answered.emit(Answer(query, answer.recommendations, answer.message, f"{answer.note} {previous}"))
            return
        recommendations = index.similar(track.id, k=query.count, exclude_same_artist=query.exclude_same_artist,
                                        exclude_same_album=query.exclude_same_album)
        self.answered.emit(Answer(query, recommendations, note=previous))

    def _build(self) -> None:
        if self._building:
            return
        self._building = True
        generation = self._generation
        library, folder = self.session.library, self.session.folder
        encoder_key, analysis_key = self.session.encoder_key, self.session.analysis.key

        def build():
            return VectorIndex.from_library(library, encoder_key=encoder_key, analysis_key=analysis_key, under=folder)

        def built(index: VectorIndex) -> None:
            if generation != self._generation:
                return
            self._building = False
            for track, vector in self._added_while_building:
                index.add(track, vector)
            self._added_while_building = []
            self.index = index
            if index.wants_ann:
                # Loads the graph saved beside the library, or builds it (minutes at a million songs)
                # and saves it: queries are exact (50–75 ms at a million) until it is ready.
                self.jobs.submit(index.build_ann, lambda _built: None, lambda _err: None)
            if self._waiting is not None:
                query, self._waiting = self._waiting, None
                self.answered.emit(self._answer(query))

        def failed(err: BaseException) -> None:
            if generation != self._generation:
                return
            self._building = False
            if self._waiting is not None:
                query, self._waiting = self._waiting, None
                self.answered.emit(Answer(query, message=f"Cannot compute recommendations: {err}"))

        self.jobs.submit(build, built, failed)

    def _on_engine_event(self, event) -> None:
        if isinstance(event, Reanalysed):
            return self._on_reanalysed(event)
        if isinstance(event, scan_mod.TrackDone) and event.vector is not None:
            if self.index is not None:
                self.index.add(event.track, event.vector)
                if self._unanswered is not None and self._unanswered.anchor.id == event.track.id:
                    self.answered.emit(self._answer(self._unanswered))
            elif self._building:
                self._added_while_building.append((event.track, event.vector))
            self._added_since_answer = True
        elif isinstance(event, scan_mod.ScanStarted) and event.pruned:
            self.invalidate()  # songs were forgotten: rebuilding is simpler than removing them
        elif isinstance(event, scan_mod.ScanFinished) and not event.cancelled and not event.error \
                and self._previous is not None:
            self._previous = None  # every song now has its vector under the mode in use
            self._added_since_answer = False
            self.indexChanged.emit()
        elif isinstance(event, scan_mod.ScanFinished) and self._added_since_answer:
            self._added_since_answer = False
            self.indexChanged.emit()

    def _on_reanalysed(self, event: Reanalysed) -> None:
        if self.session.track(event.track_id) is None:
            return  # not a song of the open folder
        result = event.result
        if isinstance(result, scan_mod.TrackDone) and result.vector is not None:
            if self.index is not None:
                self.index.add(result.track, result.vector)  # replaces the old vector
            elif self._building:
                self._added_while_building.append((result.track, result.vector))
        else:
            self.invalidate()  # it failed: its old vector must leave the index
        self.indexChanged.emit()
