"""Command-line options that ``musicrec`` and ``musicrec-gui`` share, declared once."""

from __future__ import annotations

import argparse

from musicrec_gui import __version__
from musicrec_gui.core.library import default_library_path


def add_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"musicrec {__version__}")


def add_library_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """``--library`` and ``--encoder``: which cache and which model (``defaults=False`` for subcommands)."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--library", type=str, default=default(None),  # str: a trailing "/" must reach the check
                        help=f"library cache file (default: $MUSICREC_LIBRARY or {default_library_path()})")
    parser.add_argument("--encoder", type=str, default=default(None),
                        help="a bundled encoder: musicnn (the default), fast (a distilled student, several times "
                             "quicker to scan) or compact (the original recipe's CNN); or a .keras file with its "
                             ".json beside it")
