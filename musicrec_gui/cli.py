"""``musicrec``: the command line of the musicrec engine.

    musicrec scan FOLDER                 analyse a music folder (cached; rescans are incremental)
    musicrec similar SONG [-k 2]         nearest songs to SONG (a path or part of a title)
    musicrec embed FOLDER --out F.npz    song vectors as arrays ``files`` and ``vectors``
    musicrec playlist SONG -k N -o F.m3u8
    musicrec info                        library size, failures, encoder, space per encoder
    musicrec prune-vectors [--yes]       delete the vectors of encoders no longer used
    musicrec mpd [--music-dir DIR]       keep MPD's queue going with songs like the one playing
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from musicrec_gui.core.config import ANALYSIS_MODES, AnalysisSettings
from musicrec_gui.core.encoder import (EncoderConfig, EncoderError, LazyEncoder, encoder_path_for,
                                       read_encoder_config)
from musicrec_gui.core.errors import FailureKind, MusicrecError
from musicrec_gui.core.names import terminal_text
from musicrec_gui.options import add_library_options, add_version_option
from musicrec_gui.core.output import OutputRefused, check_embed_path, write_embed_npz
from musicrec_gui.core.playlist import PlaylistError, check_playlist_path, playlist_title, song_label, write_m3u8
from musicrec_gui.core.library import Library, Track, is_below
from musicrec_gui.core.tags import tags_text, top_tags
from musicrec_gui.core.recommend import VectorIndex, closeness_percent
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.runtime import MPD_DEFAULT_HOST, MPD_DEFAULT_PORT, mpd_address

EXIT_USAGE = 2
EXIT_FAILURE = 1
MIN_EXCERPT_SECONDS = 1.0


class CliError(MusicrecError):
    """An error for the user: printed without a traceback, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options valid before or after the command; only the main parser sets defaults."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    add_library_options(parser, defaults=defaults)
    parser.add_argument("--mode", choices=list(ANALYSIS_MODES), default=default("spread"),
                        help="spread: a few 3-s patches spread over each whole song (default); excerpt: the "
                             "centred excerpt; full: the whole song (up to 64 patches, slower)")
    parser.add_argument("--patches", type=_patches, default=default(8),
                        help="patches per song in spread mode (default 8)")
    parser.add_argument("--excerpt-seconds", type=_excerpt_seconds, default=default(30.0),
                        help="excerpt length in seconds, at least 1 (default 30)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bar")


def _excerpt_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < MIN_EXCERPT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a finite length of at least {MIN_EXCERPT_SECONDS:g} s (one slice is about 3 s), got {text!r}")
    return value


def max_workers() -> int:
    """More decoding threads than this only make each file slower (and time out healthy ones)."""
    return max(2, 2 * (os.cpu_count() or 1))


def _patches(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"expected 1 to 256 patches, got {value}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= max_workers():
        raise argparse.ArgumentTypeError(
            f"expected 1 to {max_workers()} (twice this machine's {os.cpu_count() or 1} cores), got {value}")
    return value


def _add_scan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=_workers, default=2, help="decoding threads (default 2)")
    parser.add_argument("--prune", action="store_true",
                        help="forget songs that are gone even where their whole folder is gone or empty "
                             "(by default they are kept as missing: an unplugged drive keeps its cache)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="analyse again the files that failed before with this encoder and mode")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="analyse the new and changed files on a Ray cluster: the head node's HOST:PORT, or "
                             "none for the cluster this machine is a node of (needs: pip install "
                             "'musicrec[cluster]'); the library is still written here only")
    parser.add_argument("--ray-files", choices=["auto", "shared", "ship"], default="auto",
                        help="with --ray: shared: every node reads the files at the same path (a shared mount); "
                             "ship: this machine reads them and sends their bytes; auto (default): shared if every "
                             "node sees a sample of them unchanged, else ship")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicrec", description=__doc__.split("\n\n")[0].split(": ", 1)[-1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    add_version_option(parser)
    _add_common_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_common_options(common, defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("scan", help="analyse the audio files in a folder", parents=[common])
    _add_scan_options(p)

    for name, help_text in (("similar", "songs that sound like SONG"), ("playlist", "write SONG and its nearest songs as M3U8")):
        p = sub.add_parser(name, help=help_text, parents=[common])
        p.add_argument("song", help="a file path, or part of a title or 'artist - title'")
        p.add_argument("-k", type=int, default=2 if name == "similar" else 20, help="how many songs")
        p.add_argument("--exclude-artist", action="store_true", help="leave out the anchor's artist")
        p.add_argument("--exclude-album", action="store_true", help="leave out the anchor's album")
        p.add_argument("--keep-duplicates", action="store_true",
                       help="keep near-identical vectors (the same recording twice)")
        p.add_argument("--folder", type=Path, default=None,
                       help="search only the songs below this folder (what the app searches when the folder is open); "
                            "default: the whole library")
        if name == "playlist":
            p.add_argument("-o", "--output", type=Path, required=True, help="the .m3u8 (or .m3u) file to write")
            p.add_argument("--force", action="store_true",
                           help="replace OUTPUT even if it is a file musicrec did not write")

    p = sub.add_parser("embed", help="analyse a folder and save its song vectors as .npz", parents=[common])
    _add_scan_options(p)
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--force", action="store_true", help="replace OUT even if it is a file musicrec did not write")

    p = sub.add_parser("info", help="library size, failures and encoder; or one song's details and tags",
                       parents=[common])
    p.add_argument("song", nargs="?", help="a song (path, or part of its title): its details and top tags")
    p.add_argument("--failures", action="store_true", help="list every failed file with its reason")

    p = sub.add_parser("prune-vectors", parents=[common],
                       help="delete the song vectors and failures of every encoder but the one in use "
                            "(the file list stays); without --yes, only say what would be deleted")
    p.add_argument("--yes", action="store_true", help="delete them (there is no other confirmation)")
    p.add_argument("--compact", action="store_true",
                   help="then give the freed space back to the disk (rewrites the library: slower, and needs "
                        "as much free space as the library takes)")

    p = sub.add_parser("mpd", parents=[common],
                       help="keep MPD's queue going with songs like the one playing (needs musicrec[mpd])")
    p.add_argument("--host", default=None,
                   help=f"MPD's host name or socket path (default: $MPD_HOST or {MPD_DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=None, help=f"MPD's port (default: $MPD_PORT or {MPD_DEFAULT_PORT})")
    p.add_argument("--password", default=None, help="MPD's password, if it has one (or MPD_HOST=password@host)")
    p.add_argument("--music-dir", type=Path, default=None,
                   help="the folder MPD's music_directory names, scanned with 'musicrec scan' (default: what MPD "
                        "says, which it tells only over its local socket)")
    p.add_argument("-k", "--ahead", type=int, default=3,
                   help="songs to keep queued after the one playing (default 3)")
    p.add_argument("--exclude-artist", action="store_true", help="leave out the playing song's artist")
    p.add_argument("--exclude-album", action="store_true", help="leave out the playing song's album")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (the scan's cleanup runs)."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:  # started with stdout closed (``>&-``): output goes nowhere, not to a crash
        sys.stdout = open(os.devnull, "w")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = AnalysisSettings(mode=args.mode, excerpt_seconds=args.excerpt_seconds, patches=args.patches)
    except ValueError as err:
        parser.error(str(err))
    # SIGTERM's default kills the process mid-song without a word; as an exception in the main thread it
    # unwinds like Ctrl-C: the scan stops its decoders, the library is closed, the user is told.
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there may handlers be set
    if in_main_thread:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        handler = {"scan": cmd_scan, "similar": cmd_similar, "playlist": cmd_playlist,
                   "embed": cmd_embed, "info": cmd_info, "prune-vectors": cmd_prune_vectors,
                   "mpd": cmd_mpd}[args.command]
        code = handler(args, settings)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``musicrec similar … | head -1``): stop quietly. Point stdout
        # at devnull so the flush at exit does not fail again (Python docs, "Note on SIGPIPE").
        _silence_stdout()
        return EXIT_FAILURE
    except CliError as err:
        _print_error(err)
        return err.code
    except MusicrecError as err:  # a library, encoder, settings or output problem: its message says what to do
        _print_error(err)
        return EXIT_FAILURE
    except OSError as err:
        # Output that cannot be written (stdout on a full disk or /dev/full): say so in one line.
        _silence_stdout()
        _print_error(f"cannot write the output: {err.strerror or err}.")
        return EXIT_FAILURE
    except (KeyboardInterrupt, ImportError) as err:
        # An interrupt that lands while a C extension initialises (scipy's, during librosa's import)
        # comes back as "ImportError: initialization failed", caused by the interrupt: the same stop.
        interrupt = _interrupt_behind(err)
        if interrupt is None:
            raise
        print("musicrec: interrupted; finished songs are kept in the library.", file=sys.stderr)
        code = 128 + (signal.SIGTERM if isinstance(interrupt, _Terminated) else signal.SIGINT)
        if argv is None:
            # The process exits next (console script or python -m), and everything that matters is
            # done: the library is closed, each song was its own transaction. Skipping the
            # interpreter's shutdown keeps the stop prompt (its last garbage collection walks
            # TensorFlow's object graph, about 1 s) and safe: an interrupt that landed inside
            # TensorFlow's import left modules half made, and finalizing them could end the
            # process by SIGINT instead of this exit code.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError, AttributeError):
                    pass
            os._exit(code)
        return code
    finally:
        if in_main_thread:
            # None: a handler not set from Python; the default is the closest we can put back.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# -- helpers -----------------------------------------------------------------
def _interrupt_behind(err: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM that ``err`` is, or that caused it (through ``__cause__``/``__context__``)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _print_error(err: object) -> None:
    """One ``musicrec: error:`` message; paths a user typed may hold escape sequences too."""
    text = "\n".join(terminal_text(line) for line in str(err).split("\n"))
    try:
        print(f"musicrec: error: {text}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # stderr is gone as well: the exit code must do
        pass


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests, embedding)
        pass


def _printable(text: object) -> str:
    """``text`` (a tag, file name or message from a file) safe to print: no control characters."""
    return terminal_text(str(text))


def _refused(err: OutputRefused) -> CliError:
    hint = " Or pass --force to replace it anyway." if err.forceable else ""
    return CliError(f"{err}{hint}", EXIT_USAGE)


def _open_library(args) -> Library:
    library = Library(args.library)
    if library.recovered_from is not None:
        print(f"musicrec: the library file was damaged or foreign; it was moved to {_printable(library.recovered_from)} "
              "and a new one started.", file=sys.stderr)
    return library


def _encoder_path(args) -> Path:
    try:
        path = encoder_path_for(args.encoder)
    except EncoderError as err:
        raise CliError(str(err), EXIT_USAGE) from None
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
    folder = _check_folder(folder)
    library = _open_library(args)
    analysis = None
    try:
        # TensorFlow is imported only when a song needs analysing: a rescan with nothing new is quick.
        encoder = LazyEncoder(_encoder_path(args))
        if getattr(args, "ray", None) is not None:
            # Ray's absence or a wrong address is told now, before the folder is walked.
            from musicrec_gui.core.cluster import RayAnalysis

            analysis = RayAnalysis(args.ray, files=args.ray_files, local_workers=args.workers)
    except BaseException:
        library.close()
        raise
    bar = None
    failures: list[tuple[str, str, FailureKind]] = []
    notes: list[tuple[str, str]] = []  # songs analysed in part (a cut-off file)
    finished = None
    try:
        from tqdm import tqdm

        for event in scan_mod.scan(folder, library=library, encoder=encoder, settings=settings,
                                   workers=args.workers, prune=args.prune, retry_failed=args.retry_failed,
                                   analysis=analysis):
            if isinstance(event, scan_mod.ScanStarted):
                print(f"{event.total} audio files: {event.cached} already analysed, {event.to_analyse} to analyse"
                      + (f", {event.failed_before} failed before (--retry-failed)" if event.failed_before else "")
                      + (f", {event.pruned} removed files forgotten" if event.pruned else ""), file=sys.stderr)
                if event.missing:
                    print(f"{event.missing} known songs were not found and are kept as missing (their folder is "
                          "gone or empty: an unmounted drive?); 'musicrec scan --prune' forgets them.",
                          file=sys.stderr)
                bar = tqdm(total=event.to_analyse, unit="song", disable=args.quiet or not event.to_analyse,
                           file=sys.stderr, dynamic_ncols=True)
            elif isinstance(event, (scan_mod.TrackDone, scan_mod.TrackFailed)):
                if isinstance(event, scan_mod.TrackFailed):
                    failures.append((event.path, event.reason, event.kind))
                elif event.note:
                    notes.append((event.track.path, event.note))
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
    if analysis is not None and analysis.summary.nodes:
        run = analysis.summary
        print(f"on the Ray cluster at {_printable(run.address)}: {run.nodes} nodes, {run.cpus} CPUs, files "
              + ("read by the nodes (shared)" if run.files == "shared" else "sent from here (ship)")
              + (f"; {run.here} songs analysed here (the nodes did not see them as planned)" if run.here else ""),
              file=sys.stderr)
    for path, note in notes:
        print(f"  analysed in part: {_printable(path)}: {_printable(note)}", file=sys.stderr)
    for path, reason, kind in failures:
        print(f"  failed ({kind.label}): {_printable(path)}: {_printable(reason)}", file=sys.stderr)
    if finished.error:
        raise CliError(_printable(finished.error))
    return finished


def _index(config: EncoderConfig, settings: AnalysisSettings, library: Library, *,
           tracks: list[Track] | None = None, under: str | None = None, centre: bool = True) -> VectorIndex:
    return VectorIndex.from_library(library, encoder_key=config.key, analysis_key=settings.key,
                                    dimension=config.embedding_size, tracks=tracks, under=under, centre=centre)


def _resolve_song(song: str, library: Library, index: VectorIndex, *, folder: Path | None = None) -> Track:
    if os.path.exists(song):
        track = library.track_by_path(song)
        if track is None:
            raise CliError(f"{_printable(song)} is not in the library; run 'musicrec scan' on its folder first.")
        if track.id not in index:
            if folder is not None and not is_below(track.path, folder):
                raise CliError(f"{_printable(song)} is not below --folder {_printable(str(folder))}; leave --folder "
                               "out, or give the folder that holds it.", EXIT_USAGE)
            if track.status == "failed":
                raise CliError(f"{_printable(song)} could not be analysed ({_printable(track.error)}); repair it, "
                               "then run 'musicrec scan --retry-failed' on its folder.")
            raise CliError(f"{_printable(song)} has not been analysed with this encoder and mode; run 'musicrec scan'.")
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
    listing = "\n".join(f"  {_printable(song_label(t))}  ({_printable(t.path)})" for t in matches[:10])
    more = f"\n  … and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise CliError(f"{len(matches)} songs match {song!r}; be more specific or give a path:\n{listing}{more}")


def _recommend(args, settings):
    if args.k < 1:
        raise CliError(f"-k must be at least 1, got {args.k}.", EXIT_USAGE)
    if args.folder is not None:
        _check_folder(args.folder)  # the same checks (and messages) as a scan's folder
    config = _encoder_config(args)
    library = _open_library(args)
    try:
        index = _index(config, settings, library, under=str(args.folder) if args.folder is not None else None)
        anchor = _resolve_song(args.song, library, index, folder=args.folder)
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
    print(f"songs like: {_printable(song_label(anchor))}  ({_printable(anchor.path)})")
    if not results:
        print("no song to recommend: there is no other analysed song, or every other one is excluded or "
              "sounds identical to this one (a copy? --keep-duplicates lists those).")
    else:
        print("  #  closer than N % of the song pairs in this library  |  title  |  artist  |  file")
    for rank, rec in enumerate(results, 1):
        t = rec.track
        print(f"{rank:>3}  {closeness_percent(rec.closeness):>3} %  {_printable(t.title)}  |  {_printable(t.artist or '-')}  |  "
              f"{_printable(t.path)}")
    return 0


def cmd_playlist(args, settings) -> int:
    try:
        check_playlist_path(args.output, force=args.force)  # before any work: a bad target is a usage error
    except OutputRefused as err:
        raise _refused(err) from None
    anchor, results = _recommend(args, settings)
    try:
        written = write_m3u8(args.output, [anchor] + [r.track for r in results],
                             title=playlist_title(anchor), force=args.force)
    except OutputRefused as err:  # the target changed since the check
        raise _refused(err) from None
    except PlaylistError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"cannot write {_printable(args.output)}: {err.strerror or err}; "
                       "any earlier file of that name is unchanged.") from None
    print(f"wrote {written.written} songs to {_printable(written.path)}")
    for warning in written.warnings:
        print(f"musicrec: warning: {warning}", file=sys.stderr)
    for path in written.skipped:
        print(f"  skipped: {_printable(path)}", file=sys.stderr)
    return 0


def cmd_embed(args, settings) -> int:
    out: Path = args.out
    try:
        check_embed_path(out, force=args.force)  # before the scan: a bad target is a usage error
    except OutputRefused as err:
        raise _refused(err) from None
    _run_scan(args, settings, args.folder)
    config = _encoder_config(args)
    library = _open_library(args)
    try:
        # The song vectors themselves (unit length), not centred on whatever else the library
        # holds: an exported file must not depend on the other folders scanned into it.
        index = _index(config, settings, library, tracks=library.tracks(under=args.folder), centre=False)
    finally:
        library.close()
    files = np.array([t.display_path for t in index.tracks], dtype=str)
    vectors = (index.unit if len(index) else np.zeros((0, 0))).astype(np.float32)
    try:
        written = write_embed_npz(out, files=files, vectors=vectors, force=args.force)
    except OutputRefused as err:  # the target changed during the scan
        raise _refused(err) from None
    except OSError as err:
        raise CliError(f"cannot write {_printable(out)}: {err.strerror or err}; "
                       "any earlier file of that name is unchanged.") from None
    print(f"wrote {len(index)} song vectors ({vectors.shape[1] if len(index) else 0}-d, unit length) "
          f"to {_printable(written)}")
    return 0


def cmd_song_info(args, settings) -> int:
    config = _encoder_config(args)
    library = _open_library(args)
    try:
        index = _index(config, settings, library)
        anchor = _resolve_song(args.song, library, index)
        tags = library.tag_probabilities(anchor.id, encoder_key=config.key, analysis_key=settings.key)
    finally:
        library.close()
    print(f"title:    {_printable(anchor.title)}")
    print(f"artist:   {_printable(anchor.artist or '-')}")
    print(f"album:    {_printable(anchor.album or '-')}")
    print(f"length:   {int(anchor.duration // 60)}:{int(anchor.duration % 60):02d}")
    print(f"file:     {_printable(anchor.path)}")
    best = top_tags(tags, config.labels)
    if best:
        print("tags:     " + _printable(tags_text(best)))
    else:
        print(f"tags:     none (the encoder {_printable(config.name)} has no tag head)")
    return 0


def cmd_info(args, settings) -> int:
    if args.song:
        return cmd_song_info(args, settings)
    library = _open_library(args)
    try:
        config = _encoder_config(args)
    except (CliError, EncoderError) as err:
        config, config_error = None, err
    try:
        stats = library.stats()
        usage = library.vector_usage()
        if config is not None:  # failures under the encoder and mode in use; others do not concern it
            failures = library.tracks(status="failed", encoder_key=config.key, analysis_key=settings.key)
        else:
            failures = library.tracks(status="failed")
    finally:
        library.close()
    print(f"library:  {_printable(library.path)}")
    print(f"songs:    {stats['tracks']} ({stats['done']} analysed, {stats['failed']} failed, {stats['pending']} pending"
          + (f", {stats['missing']} missing" if stats["missing"] else "") + ")")
    if config is not None:
        print(f"encoder:  {_printable(config.name)} {_printable(config.version)} ({_printable(config.architecture)}, "
              f"{config.embedding_size}-d, key {_printable(config.key)})")
    else:
        print(f"encoder:  unavailable ({_printable(config_error)})")
    unused = 0
    for item in usage:
        if config is not None and item.encoder_key == config.key:
            note = " (in use)" if item.analysis_key == settings.key else " (this encoder, another --mode)"
        else:
            note = ""
            unused += item.bytes
        failed = f", {item.failures} failed" if item.failures else ""
        print(f"vectors:  {item.vectors} songs, {_size(item.bytes)}{failed} for "
              f"{_printable(item.encoder_key)} / {_printable(item.analysis_key)}{note}")
    if config is not None and unused:
        print(f"          {_size(unused)} belong to other encoders; 'musicrec prune-vectors' deletes them.")
    shown = failures if args.failures else failures[:10]
    if failures:
        print("failures:")
        for track in shown:
            kind = f"({track.error_kind.label}) " if track.error_kind is not None else ""
            print(f"  {kind}{_printable(track.path)}: {_printable(track.error)}")
        if len(failures) > len(shown):
            print(f"  … {len(failures) - len(shown)} more (musicrec info --failures)")
    return 0 if config is not None else EXIT_FAILURE  # scripts can tell a broken encoder


def cmd_prune_vectors(args, settings) -> int:
    try:
        config = _encoder_config(args)
    except (CliError, EncoderError) as err:
        raise CliError(f"cannot tell which encoder is in use, so nothing was deleted: {err} "
                       "Pass --encoder with the encoder whose vectors to keep.") from None
    library = _open_library(args)
    try:
        result = library.prune_vectors(keep_encoder_key=config.key, dry_run=not args.yes)
        if args.yes and args.compact:
            library.compact()
    finally:
        library.close()
    print(f"keeping:  {_printable(config.name)} {_printable(config.version)} (key {_printable(config.key)})")
    if not result.encoder_keys:
        print("nothing to delete: every vector in the library belongs to this encoder.")
        return 0
    for key in result.encoder_keys:
        print(f"other:    {_printable(key)}")
    what = (f"{result.vectors} song vectors ({_size(result.bytes)}) and {result.failures} failure records "
            f"of {len(result.encoder_keys)} other encoder{'s' if len(result.encoder_keys) != 1 else ''}")
    if not args.yes:
        print(f"would delete {what}; nothing was deleted. Run again with --yes to delete them "
              "(the file list is kept; another encoder's songs are analysed again if it is used again).")
        return 0
    print(f"deleted {what}; the file list is kept."
          + (" The library was compacted." if args.compact else
             " The space is reused by later scans ('--compact' gives it back to the disk now)."))
    return 0


def cmd_mpd(args, settings) -> int:
    from musicrec_gui.integrations import mpd_queue

    if args.ahead < 1:
        raise CliError(f"--ahead must be at least 1, got {args.ahead}.", EXIT_USAGE)
    env_host, env_port, env_password = mpd_address()
    host = args.host or env_host or MPD_DEFAULT_HOST
    try:
        port = args.port or (_port(env_port) if env_port else MPD_DEFAULT_PORT)
    except argparse.ArgumentTypeError as err:
        raise CliError(f"MPD_PORT: {err}; set it to MPD's port or pass --port.", EXIT_USAGE) from None
    password = args.password or env_password
    mpd_queue.load_mpd()  # before anything else: a missing package is the first thing to hear of
    config = _encoder_config(args)
    client = mpd_queue.connect(host, port, password)
    library = None
    try:
        music_dir = mpd_queue.music_directory(client, args.music_dir)
        library = _open_library(args)

        def say(line: str) -> None:
            print(_printable(line), flush=True)

        keeper = mpd_queue.QueueKeeper(library, lambda: _index(config, settings, library, under=music_dir),
                                       mpd_queue.SongMap(music_dir),
                                       mpd_queue.QueueOptions(ahead=args.ahead, exclude_same_artist=args.exclude_artist,
                                                              exclude_same_album=args.exclude_album), say)
        if not len(keeper.index):
            raise CliError(f"no song below {_printable(music_dir)} has been analysed with this encoder and mode; run "
                           f"'musicrec scan {_printable(music_dir)}' first (with the same --encoder and --mode).")
        where = host if host.startswith(("/", "@")) else f"{host}:{port}"
        say(f"keeping MPD's queue at {where} {args.ahead} song{'s' if args.ahead != 1 else ''} ahead with songs like "
            f"the one playing ({len(keeper.index)} analysed songs below {music_dir}); Ctrl-C stops.")
        try:
            mpd_queue.keep_queue(client, keeper, say=say)
        except KeyboardInterrupt:
            say("stopped; MPD's queue is left as it is.")
    finally:
        client.disconnect()
        if library is not None:
            library.close()
    return 0


def _size(n_bytes: int) -> str:
    """``1.2 MB``: a size for people (decimal units, as file managers show them)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} bytes"


if __name__ == "__main__":
    sys.exit(main())
