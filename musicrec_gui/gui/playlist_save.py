"""Saving songs as an M3U8 playlist from the app: one dialog flow for every list that can be saved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from musicrec_gui.core.library import Track
from musicrec_gui.core.playlist import PLAYLIST_SUFFIXES, PlaylistWritten, write_m3u8


def write_playlist(path: str, tracks: Sequence[Track], *, title: str, force: bool = False) -> PlaylistWritten:
    """Write ``tracks`` to ``path`` (``.m3u8`` added to a name without an extension).

    The rules of :func:`musicrec_gui.core.playlist.check_playlist_path` apply: another
    extension, a folder or special file, or an existing file musicrec did not write (unless
    ``force``, which only ever applies to the very name given) is refused with a ValueError.
    """
    output = Path(path)
    if not output.suffix:
        output = output.with_name(output.name + ".m3u8")
    return write_m3u8(output, tracks, title=title, force=force and output == Path(path))


def ask_and_save(parent: QWidget, tracks: Sequence[Track], *, folder: str, name: str,
                 title: str) -> PlaylistWritten | None:
    """Ask where to save, write, and tell the user what went wrong or was left out; None if nothing was written.

    Parameters
    ----------
    folder : str
        Where the file dialog starts (the open music folder; the home folder for the demo).
    name : str
        The proposed file name, without a folder.
    """
    default = os.path.join(folder or str(Path.home()), name.replace(os.sep, "_"))
    path, _ = QFileDialog.getSaveFileName(parent, "Save playlist", default, "M3U8 playlist (*.m3u8 *.m3u)")
    if not path:
        return None
    # The file dialog has already asked "replace?" for an existing file. That answer stands in for
    # the command line's --force only for a file that is a playlist by name (.m3u8/.m3u), and only
    # if it is the very file the dialog asked about: any other file musicrec did not write is refused.
    confirmed = os.path.lexists(path) and Path(path).suffix.lower() in PLAYLIST_SUFFIXES
    try:
        written = write_playlist(path, tracks, title=title, force=confirmed)
    except (OSError, ValueError) as err:
        QMessageBox.warning(parent, "Playlist not saved", str(err))
        return None
    if written.warnings:
        QMessageBox.information(parent, "Some songs left out", "\n\n".join(written.warnings))
    return written


def saved_text(written: PlaylistWritten) -> str:
    """"Saved 9 songs to …" for the status bar."""
    skipped = f" ({len(written.skipped)} left out)" if written.skipped else ""
    return f"Saved {written.written} songs to {written.path}{skipped}"
