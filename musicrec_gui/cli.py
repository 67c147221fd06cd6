"""``musicrec``: the command line of the musicrec engine.

    musicrec scan FOLDER                 analyse a music folder (cached; rescans are incremental)
    musicrec similar SONG [-k 2]         nearest songs to SONG (a path or part of a title)
    musicrec embed FOLDER --out F.npz    song vectors as arrays ``files`` and ``vectors``
    musicrec playlist SONG -k N -o F.m3u8
    musicrec info                        library size, failures, encoder
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from musicrec_gui import __version__
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.encoder import EncoderConfig, EncoderError, bundled_encoder_path, read_encoder_config
from musicrec_gui.core.names import display_text
from musicrec_gui.core.playlist import check_playlist_path, song_label, write_m3u8
from musicrec_gui.core.library import Library, LibraryError, Track, default_library_path
from musicrec_gui.core.recommend import VectorIndex
from musicrec_gui.core import scan as scan_mod

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """An error for the user: printed without a traceback, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options valid before or after the command; only the main parser sets defaults."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--library", type=Path, default=default(None),
                        help=f"library cache file (default: $MUSICREC_LIBRARY or {default_library_path()})")
    parser.add_argument("--encoder", type=Path, default=default(None),
                        help="a .keras encoder with its .json beside it (default: the bundled one)")
    parser.add_argument("--mode", choices=["excerpt", "full"], default=default("excerpt"),
                        help="analyse a centred excerpt (fast, default) or the full track (better, slower)")
    parser.add_argument("--excerpt-seconds", type=float, default=default(30.0), help="excerpt length (default 30)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicrec", description=__doc__.split("\n\n")[0].split(": ", 1)[-1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--version", action="version", version=f"musicrec {__version__}")
    _add_common_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_common_options(common, defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("scan", help="analyse the audio files in a folder", parents=[common])
    p.add_argument("folder", type=Path)
    p.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")

    for name, help_text in (("similar", "songs that sound like SONG"), ("playlist", "write SONG and its nearest songs as M3U8")):
        p = sub.add_parser(name, help=help_text, parents=[common])
        p.add_argument("song", help="a file path, or part of a title or 'artist - title'")
        p.add_argument("-k", type=int, default=2 if name == "similar" else 20, help="how many songs")
        p.add_argument("--exclude-artist", action="store_true", help="leave out the anchor's artist")
        p.add_argument("--exclude-album", action="store_true", help="leave out the anchor's album")
        p.add_argument("--keep-duplicates", action="store_true",
                       help="keep near-identical vectors (the same recording twice)")
        if name == "playlist":
            p.add_argument("-o", "--output", type=Path, required=True, help="the .m3u8 file to write")

    p = sub.add_parser("embed", help="analyse a folder and save its song vectors as .npz", parents=[common])
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--workers", type=int, default=2)

    p = sub.add_parser("info", help="library size, failures and encoder", parents=[common])
    p.add_argument("--failures", action="store_true", help="list every failed file with its reason")
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (the scan's cleanup runs)."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = AnalysisSettings(mode=args.mode, excerpt_seconds=args.excerpt_seconds)
    except ValueError as err:
        parser.error(str(err))
    # SIGTERM's default kills the process mid-song without a word; as an exception in the main thread it
    # unwinds like Ctrl-C: the scan stops its decoders, the library is closed, the user is told.
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there may handlers be set
    if in_main_thread:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        handler = {"scan": cmd_scan, "similar": cmd_similar, "playlist": cmd_playlist,
                   "embed": cmd_embed, "info": cmd_info}[args.command]
        return handler(args, settings)
    except CliError as err:
        print(f"musicrec: error: {err}", file=sys.stderr)
        return err.code
    except (LibraryError, EncoderError) as err:
        print(f"musicrec: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as err:
        print("musicrec: interrupted; finished songs are kept in the library.", file=sys.stderr)
        if argv is None:
            # The process exits next (console script or python -m). Its last garbage collection walks
            # TensorFlow's whole object graph, about 1 s; frozen objects are skipped, so the stop stays prompt.
            gc.freeze()
        return 128 + (signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT)
    finally:
        if in_main_thread:
            # None: a handler not set from Python; the default is the closest we can put back.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# -- helpers -----------------------------------------------------------------
def _open_library(args) -> Library:
    library = Library(args.library)
    if library.recovered_from is not None:
        print(f"musicrec: the library file was damaged or foreign; it was moved to {library.recovered_from} "
              "and a new one started.", file=sys.stderr)
    return library


def _encoder_path(args) -> Path:
    path = args.encoder or bundled_encoder_path()
    if not Path(path).with_suffix(".keras").exists() and not Path(path).exists():
        raise CliError(f"no encoder at {path}; pass --encoder PATH to a .keras file with its .json beside it.")
    return Path(path)


def _encoder_config(args) -> EncoderConfig:
    return read_encoder_config(_encoder_path(args))


def _check_folder(folder: Path) -> Path:
    if not folder.exists():
        raise CliError(f"folder {folder} does not exist.", EXIT_USAGE)
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder; give the folder that holds your music.", EXIT_USAGE)
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CliError(f"folder {folder} cannot be read (permission denied).", EXIT_USAGE)
    return folder


def _run_scan(args, settings: AnalysisSettings, folder: Path) -> scan_mod.ScanFinished:
    from musicrec_gui.core.encoder import Encoder  # imports TensorFlow: only when analysis is needed

    folder = _check_folder(folder)
    encoder = Encoder(_encoder_path(args))
    library = _open_library(args)
    bar = None
    failures: list[tuple[str, str]] = []
    finished = None
    try:
        from tqdm import tqdm

        for event in scan_mod.scan(folder, library=library, encoder=encoder, settings=settings,
                                   workers=getattr(args, "workers", 2)):
            if isinstance(event, scan_mod.ScanStarted):
                print(f"{event.total} audio files: {event.cached} already analysed, {event.to_analyse} to analyse"
                      + (f", {event.pruned} removed files forgotten" if event.pruned else ""), file=sys.stderr)
                bar = tqdm(total=event.to_analyse, unit="song", disable=args.quiet or not event.to_analyse,
                           file=sys.stderr, dynamic_ncols=True)
            elif isinstance(event, (scan_mod.TrackDone, scan_mod.TrackFailed)):
                if isinstance(event, scan_mod.TrackFailed):
                    failures.append((event.path, event.reason))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=len(failures), refresh=False)
            elif isinstance(event, scan_mod.ScanFinished):
                finished = event
    finally:
        if bar is not None:
            bar.close()
        library.close()
    assert finished is not None
    print(f"analysed {finished.analysed}, failed {finished.failed}, unchanged {finished.cached} "
          f"in {finished.seconds:.1f} s", file=sys.stderr)
    for path, reason in failures:
        print(f"  failed: {_printable(path)}: {reason}", file=sys.stderr)
    return finished


def _printable(path: str) -> str:
    return display_text(path)


def _index(args, settings: AnalysisSettings, library: Library) -> VectorIndex:
    config = _encoder_config(args)
    return VectorIndex.from_library(library, encoder_key=config.key, analysis_key=settings.key)


def _resolve_song(song: str, library: Library, index: VectorIndex) -> Track:
    if os.path.exists(song):
        track = library.track_by_path(song)
        if track is None:
            raise CliError(f"{song} is not in the library; run 'musicrec scan' on its folder first.")
        if track.id not in index:
            reason = f" (analysis failed: {track.error})" if track.status == "failed" else ""
            raise CliError(f"{song} has not been analysed with this encoder and mode{reason}; run 'musicrec scan'.")
        return track
    needle = song.casefold()
    matches = [t for t in index.tracks if needle in song_label(t).casefold() or needle in t.display_path.casefold()]
    exact = [t for t in matches if needle in (t.title.casefold(), song_label(t).casefold())]
    if len(exact) == 1:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        hint = ""
        if not len(index):
            hint = (" No song has been analysed with this encoder and --mode yet: run 'musicrec scan FOLDER'"
                    " (with the same --mode and --encoder).")
        raise CliError(f"no analysed song matches {song!r}.{hint}")
    listing = "\n".join(f"  {song_label(t)}  ({t.display_path})" for t in matches[:10])
    more = f"\n  … and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise CliError(f"{len(matches)} songs match {song!r}; be more specific or give a path:\n{listing}{more}")


def _recommend(args, settings):
    if args.k < 1:
        raise CliError(f"-k must be at least 1, got {args.k}.", EXIT_USAGE)
    library = _open_library(args)
    try:
        index = _index(args, settings, library)
        anchor = _resolve_song(args.song, library, index)
        results = index.similar(anchor.id, k=args.k, exclude_same_artist=args.exclude_artist,
                                exclude_same_album=args.exclude_album, drop_duplicates=not args.keep_duplicates)
    finally:
        library.close()
    return anchor, results


# -- commands ----------------------------------------------------------------
def cmd_scan(args, settings) -> int:
    _run_scan(args, settings, args.folder)
    return 0


def cmd_similar(args, settings) -> int:
    anchor, results = _recommend(args, settings)
    print(f"songs like: {song_label(anchor)}  ({anchor.display_path})")
    if not results:
        print("no other analysed songs to compare with.")
    for rank, rec in enumerate(results, 1):
        t = rec.track
        print(f"{rank:>3}  {rec.score:+.3f}  {t.title}  |  {t.artist or '-'}  |  {t.display_path}")
    return 0


def cmd_playlist(args, settings) -> int:
    try:
        check_playlist_path(args.output)  # before any work: a bad name is a usage error
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    anchor, results = _recommend(args, settings)
    try:
        write_m3u8(args.output, [anchor] + [r.track for r in results], title=f"Songs like {song_label(anchor)}")
    except OSError as err:
        raise CliError(f"cannot write {args.output}: {err.strerror or err}.") from None
    print(f"wrote {len(results) + 1} songs to {args.output}")
    return 0


def cmd_embed(args, settings) -> int:
    out: Path = args.out
    if out.suffix != ".npz":
        raise CliError(f"--out must name a .npz file, got {out}.", EXIT_USAGE)
    _run_scan(args, settings, args.folder)
    root = os.path.join(os.path.abspath(args.folder), "")
    library = _open_library(args)
    try:
        index = _index(args, settings, library)
    finally:
        library.close()
    rows = [i for i, t in enumerate(index.tracks) if t.path.startswith(root)]
    files = np.array([index.tracks[i].display_path for i in rows], dtype=str)
    vectors = (np.stack([index.unit[i] for i in rows]) if rows else np.zeros((0, 0))).astype(np.float32)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, files=files, vectors=vectors)
    except OSError as err:
        raise CliError(f"cannot write {out}: {err.strerror or err}.") from None
    print(f"wrote {len(rows)} song vectors ({vectors.shape[1] if rows else 0}-d, unit length) to {out}")
    return 0


def cmd_info(args, settings) -> int:
    library = _open_library(args)
    try:
        stats = library.stats()
        failures = library.tracks(status="failed")
    finally:
        library.close()
    print(f"library:  {library.path}")
    print(f"songs:    {stats['tracks']} ({stats['done']} analysed, {stats['failed']} failed, {stats['pending']} pending)")
    try:
        config = _encoder_config(args)
        print(f"encoder:  {config.name} {config.version} ({config.architecture}, {config.embedding_size}-d, key {config.key})")
    except (CliError, EncoderError) as err:
        print(f"encoder:  unavailable ({err})")
    for key, count in stats["vector_sets"].items():
        print(f"vectors:  {count} for {key}")
    shown = failures if args.failures else failures[:10]
    if failures:
        print("failures:")
        for track in shown:
            print(f"  {track.display_path}: {track.error}")
        if len(failures) > len(shown):
            print(f"  … {len(failures) - len(shown)} more (musicrec info --failures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
