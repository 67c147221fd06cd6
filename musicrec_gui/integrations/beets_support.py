"""What the beets plugin (``beetsplug/musicrec.py``) asks of musicrec, without importing beets.

beets gives paths (its items' files); musicrec answers from its own library: the nearest
analysed songs among a set of paths, and the analysis of a list of files. Nothing here writes
to the music files or to beets' database: musicrec's library is the only file written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.encoder import EncoderConfig, LazyEncoder, encoder_path_for, read_encoder_config
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import Library, Track, real_path
from musicrec_gui.core.names import display_text
from musicrec_gui.core.recommend import Recommendation, VectorIndex


class BeetsPluginError(MusicrecError):
    """The plugin's settings in beets' config are not usable."""


@dataclass(frozen=True)
class Settings:
    """The plugin's part of beets' config (``musicrec:``), checked."""

    library: str | None = None  # None: musicrec's default library
    encoder: str | None = None  # None: the bundled default
    analysis: AnalysisSettings = AnalysisSettings()

    @classmethod
    def from_config(cls, library: str, encoder: str, mode: str, patches: int, excerpt_seconds: float) -> "Settings":
        try:
            analysis = AnalysisSettings(mode=mode, patches=int(patches), excerpt_seconds=float(excerpt_seconds))
        except (ValueError, TypeError) as err:
            raise BeetsPluginError(f"the musicrec section of beets' config is not usable: {err}. Use mode: spread, "
                                   "excerpt or full; patches: a whole number (8); excerpt_seconds: at least 1.") from None
        return cls(library=os.path.expanduser(library) if library else None, encoder=encoder or None,
                   analysis=analysis)

    def encoder_path(self) -> Path:
        return Path(encoder_path_for(self.encoder))

    def encoder_config(self) -> EncoderConfig:
        return read_encoder_config(self.encoder_path())


@dataclass(frozen=True)
class Neighbours:
    """The answer for one song asked about: its neighbours, or why there are none."""

    path: str
    track: Track | None
    problem: str | None
    found: list[Recommendation]


def similar_among(settings: Settings, anchors: Sequence[str], candidates: Iterable[str], *, k: int,
                  exclude_same_artist: bool = False, exclude_same_album: bool = False) -> list[Neighbours]:
    """The ``k`` nearest analysed songs to each of ``anchors``, chosen among ``candidates`` (paths).

    ``candidates`` are the files of the beets library: the answers are songs beets knows, with
    musicrec's vectors. The index is centred on those songs, as ``musicrec similar --folder``
    centres on the songs of a folder.
    """
    if k < 1:
        raise BeetsPluginError(f"-k must be at least 1, got {k}.")
    config = settings.encoder_config()
    wanted = {real_path(p) for p in candidates}
    library = Library(settings.library)
    try:
        tracks = [t for t in library.tracks() if t.path in wanted]
        index = VectorIndex.from_library(library, encoder_key=config.key, analysis_key=settings.analysis.key,
                                         dimension=config.embedding_size, tracks=tracks)
        by_path = {t.path: t for t in tracks}
        answers = []
        for path in anchors:
            track = by_path.get(real_path(path))
            if track is None:
                answers.append(Neighbours(path, None, "not in musicrec's library yet: run 'beet musicrecscan' "
                                                      "on it first", []))
            elif track.id not in index:
                problem = (f"musicrec could not analyse it ({display_text(track.error)})" if track.status == "failed"
                           else "not analysed with this encoder and mode yet: run 'beet musicrecscan' on it first")
                answers.append(Neighbours(path, track, problem, []))
            else:
                found = index.similar(track.id, k=k, exclude_same_artist=exclude_same_artist,
                                      exclude_same_album=exclude_same_album)
                answers.append(Neighbours(path, track, None, found))
        return answers
    finally:
        library.close()


def scan_files(settings: Settings, paths: Sequence[str], *, say: Callable[[str], None],
               progress: Callable[[int, int], None] | None = None,
               retry_failed: bool = False) -> scan_mod.ScanFinished:
    """Analyse ``paths`` into musicrec's library (new or changed files only); failures are reported, not raised."""
    encoder = LazyEncoder(settings.encoder_path())
    library = Library(settings.library)
    finished = None
    try:
        for event in scan_mod.scan(None, files=list(paths), library=library, encoder=encoder,
                                   settings=settings.analysis, retry_failed=retry_failed):
            if isinstance(event, scan_mod.ScanStarted):
                say(f"{event.total} files: {event.cached} already analysed, {event.to_analyse} to analyse"
                    + (f", {event.failed_before} failed before (--retry-failed tries them again)"
                       if event.failed_before else ""))
            elif isinstance(event, scan_mod.TrackFailed):
                say(f"  failed ({event.kind.label}): {display_text(event.path)}: {display_text(event.reason)}")
                if progress is not None:
                    progress(event.completed, event.to_analyse)
            elif isinstance(event, scan_mod.TrackDone):
                if progress is not None:
                    progress(event.completed, event.to_analyse)
            elif isinstance(event, scan_mod.ScanFinished):
                finished = event
    finally:
        library.close()
    assert finished is not None
    say(f"analysed {finished.analysed}, failed {finished.failed}, unchanged {finished.cached} "
        f"in {finished.seconds:.1f} s into {display_text(str(library.path))}")
    if finished.error:
        raise MusicrecError(finished.error)
    return finished
