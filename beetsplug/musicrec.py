"""musicrec for beets: songs that sound alike, from musicrec's library, for the items of a beets library.

Enable it in beets' config (``beet config -e``)::

    plugins: musicrec
    musicrec:                 # all optional
        library: ~/.local/share/musicrec/library.sqlite3   # musicrec's library (its default)
        encoder: musicnn      # or fast, compact, or a .keras file
        mode: spread          # spread, excerpt or full, as 'musicrec --mode'
        count: 10             # neighbours per song for 'beet similar'

``beet musicrecscan [QUERY]`` analyses the matching items' files into musicrec's library (new or
changed files only); ``beet similar QUERY`` lists, for each matching item, the nearest analysed
songs of the beets library. The plugin reads paths from beets and writes nothing to your music
files or to beets' database: musicrec's library is the only file it writes.

Shipped in the musicrec wheel (``pip install 'musicrec[beets]'``, into the environment beets runs in).
"""

from __future__ import annotations

import os
import sys

from beets.plugins import BeetsPlugin
from beets.ui import Subcommand, UserError, print_

from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.recommend import closeness_percent
from musicrec_gui.integrations import beets_support


class MusicrecPlugin(BeetsPlugin):
    def __init__(self, name: str | None = None):
        super().__init__(name or "musicrec")
        self.config.add({"library": "", "encoder": "", "mode": "spread", "patches": 8, "excerpt_seconds": 30.0,
                         "count": 10})

    def _settings(self) -> beets_support.Settings:
        c = self.config
        return beets_support.Settings.from_config(c["library"].as_str(), c["encoder"].as_str(), c["mode"].as_str(),
                                                  c["patches"].get(int), c["excerpt_seconds"].as_number())

    def commands(self) -> list[Subcommand]:
        similar = Subcommand("similar", help="songs of the library that sound like the matching items (musicrec)")
        similar.parser.usage += "\nFor each item matching QUERY, the nearest songs of this beets library that " \
                                "musicrec has analysed ('beet musicrecscan' analyses them)."
        similar.parser.add_option("-k", "--count", type="int", default=None,
                                  help="how many songs per item (default: the config's count, 10)")
        similar.parser.add_option("--exclude-artist", action="store_true", default=False,
                                  help="leave out songs by the item's artist")
        similar.parser.add_option("--exclude-album", action="store_true", default=False,
                                  help="leave out songs of the item's album")
        similar.parser.add_format_option(target="item")
        similar.func = self._similar

        scan = Subcommand("musicrecscan", help="analyse the matching items' files into musicrec's library")
        scan.parser.add_option("--retry-failed", action="store_true", default=False,
                               help="analyse again the files that failed before with this encoder and mode")
        scan.func = self._scan
        return [similar, scan]

    def _similar(self, lib, opts, args) -> None:
        if not args:
            raise UserError("beet similar needs a query naming the songs to start from, e.g. beet similar "
                            "title:Morning")
        anchors = list(lib.items(args))
        if not anchors:
            raise UserError(f"no item matches the query {' '.join(args)!r}")
        everything = {os.fsdecode(item.path): item for item in lib.items()}
        from musicrec_gui.core.library import real_path

        by_real = {real_path(path): item for path, item in everything.items()}
        count = opts.count if opts.count is not None else self.config["count"].get(int)
        try:
            answers = beets_support.similar_among(
                self._settings(), [os.fsdecode(item.path) for item in anchors], list(everything), k=count,
                exclude_same_artist=opts.exclude_artist, exclude_same_album=opts.exclude_album)
        except MusicrecError as err:
            raise UserError(str(err)) from None
        for item, answer in zip(anchors, answers):
            print_(f"songs like: {format(item)}")
            if answer.problem is not None:
                print_(f"  none: {answer.problem}")
                continue
            if not answer.found:
                print_("  none: every other analysed song of the library is excluded or sounds identical")
            for rec in answer.found:
                neighbour = by_real.get(rec.track.path)
                shown = format(neighbour) if neighbour is not None else rec.track.display_path
                print_(f"  {closeness_percent(rec.closeness):>3} %  {shown}")

    def _scan(self, lib, opts, args) -> None:
        paths = [os.fsdecode(item.path) for item in lib.items(args)]
        if not paths:
            raise UserError(f"no item matches the query {' '.join(args)!r}" if args else "the beets library is empty")
        bar = None
        try:
            settings = self._settings()
            if sys.stderr.isatty():
                from tqdm import tqdm

                bar = tqdm(total=len(paths), unit="song", file=sys.stderr, dynamic_ncols=True)

            def progress(done: int, total: int) -> None:
                if bar is not None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

            beets_support.scan_files(settings, paths, say=print_, progress=progress, retry_failed=opts.retry_failed)
        except MusicrecError as err:
            raise UserError(str(err)) from None
        finally:
            if bar is not None:
                bar.close()
