"""Regenerate ``resources/demo/vectors.npz``: the demo songs analysed by the bundled encoders.

    python scripts/make_demo_vectors.py [--encoders musicnn fast compact] [--out resources/demo/vectors.npz]

Scans ``resources/demo/`` with each bundled encoder and the default analysis (8 moments
across the song) into a throw-away library, exactly as the app would, and writes what the
scan stored, keyed like any cache entry (file name, size, sha256; encoder key, analysis key),
with ``core.precomputed.write_precomputed``. The app seeds its library from it on the first
start, so the demo is shown analysed before the encoder has loaded. Run it again whenever an
encoder, the front end or a demo song changes (a stale entry is harmless: its key or its
file's hash no longer matches, and the scan analyses that song as usual).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

from musicrec_gui.core import scan as scan_mod  # noqa: E402
from musicrec_gui.core.config import AnalysisSettings  # noqa: E402
from musicrec_gui.core.encoder import BUNDLED_ENCODERS, Encoder, encoder_path_for  # noqa: E402
from musicrec_gui.core.library import Library  # noqa: E402
from musicrec_gui.core.precomputed import (  # noqa: E402
    DEMO_VECTORS, PrecomputedSong, file_sha256, load_precomputed, write_precomputed,
)
from musicrec_gui.core.resources import resource_path  # noqa: E402


def analyse(folder: Path, encoder_name: str, settings: AnalysisSettings, tmp: str) -> tuple[tuple[str, str], list]:
    encoder = Encoder(encoder_path_for(encoder_name))
    songs = []
    with Library(os.path.join(tmp, f"{encoder_name}.sqlite3")) as library:
        started = time.perf_counter()
        for event in scan_mod.scan(folder, library=library, encoder=encoder, settings=settings):
            if isinstance(event, scan_mod.TrackFailed):
                raise SystemExit(f"{event.path} could not be analysed with {encoder_name}: {event.reason}")
            if isinstance(event, scan_mod.ScanFinished) and event.error:
                raise SystemExit(f"the scan with {encoder_name} stopped: {event.error}")
        for track in library.tracks(encoder_key=encoder.key, analysis_key=settings.key, under=folder):
            slices, offset = library.slice_vectors(track.id, encoder_key=encoder.key, analysis_key=settings.key)
            ids, vectors = library.vectors(encoder_key=encoder.key, analysis_key=settings.key)
            vector = vectors[list(ids).index(track.id)]
            songs.append(PrecomputedSong(
                file=os.path.basename(track.path), size=track.size, sha256=file_sha256(track.path),
                title=track.title, artist=track.artist, album=track.album, duration=track.duration,
                vector=vector, slice_vectors=slices, offset_seconds=offset,
                tag_probabilities=library.tag_probabilities(track.id, encoder_key=encoder.key,
                                                            analysis_key=settings.key)))
        print(f"{encoder_name}: {len(songs)} songs analysed in {time.perf_counter() - started:.1f} s "
              f"(key {encoder.key} / {settings.key})", flush=True)
    return (encoder.key, settings.key), songs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=list(BUNDLED_ENCODERS), choices=list(BUNDLED_ENCODERS))
    parser.add_argument("--out", type=Path, default=resource_path("demo", DEMO_VECTORS))
    args = parser.parse_args()
    folder = resource_path("demo")
    settings = AnalysisSettings()  # the app's default analysis
    with tempfile.TemporaryDirectory(prefix="musicrec-demo-vectors-") as tmp:
        songs = dict(analyse(folder, name, settings, tmp) for name in args.encoders)
    path = write_precomputed(args.out, songs)
    check = load_precomputed(path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB): "
          + ", ".join(f"{len(check.songs(encoder_key=e, analysis_key=a))} songs for {e}/{a}" for e, a in check.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
