"""Writing output files without ever harming a file musicrec did not write.

Rules shared by playlists (``.m3u8``) and vector files (``.npz``), for the command line
and the app alike:

* the name must end in the expected extension;
* an existing target must be a regular file that musicrec wrote (each format carries a
  mark of it) unless the caller forces it; folders, devices, FIFOs and sockets are
  always refused, and so is a symbolic link unless it leads to a file that passes the
  same rules (the file it leads to is then replaced, and the link kept);
* the file is written to a temporary file of musicrec's own in the same folder, created
  exclusively, synced, and renamed over the target: the target is either the old file
  or the complete new one, and on any error only that temporary file is removed.
"""

from __future__ import annotations

import os
import secrets
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np

from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.names import terminal_text

TEMP_INFIX = ".musicrec-"
TEMP_SUFFIX = ".tmp"
_NAME_MAX = 255


class OutputRefused(MusicrecError, ValueError):
    """musicrec will not write to this path; the message says why and what to do.

    A ``ValueError`` too, as it was before it became a :class:`MusicrecError`.

    Attributes
    ----------
    forceable : bool
        True when the only objection is that an existing regular file was not written by
        musicrec: the caller may retry with ``force=True`` if the user asks for it.
    """

    def __init__(self, message: str, *, forceable: bool = False):
        super().__init__(message)
        self.forceable = forceable


def _show(path: str | os.PathLike) -> str:
    return terminal_text(os.fspath(path))


def check_output_path(
    path: str | os.PathLike,
    *,
    suffixes: Sequence[str],
    what: str,
    is_ours: Callable[[Path], bool],
    force: bool = False,
) -> Path:
    """Check that musicrec may write ``what`` to ``path``, before any work is done.

    Parameters
    ----------
    path : str or PathLike
        The file the user asked for.
    suffixes : sequence of str
        Accepted extensions, lower case with the dot (compared case-insensitively);
        the first is the one suggested.
    what : str
        What is written, for messages ("a playlist").
    is_ours : callable
        Tells whether an existing regular file was written by musicrec.
    force : bool
        Replace an existing regular file even if musicrec did not write it.

    Returns
    -------
    Path
        The file to write: ``path``, or the file a symbolic link leads to.

    Raises
    ------
    OutputRefused
        With a message that names the file, the reason and the fix.
    """
    requested = Path(path)
    expected = " or ".join(suffixes)
    if os.path.isdir(requested):  # `-o FOLDER`: say so, whatever its name
        raise OutputRefused(
            f"refusing to write {what} to {_show(requested)}: it is a folder; give a file name "
            f"ending in {suffixes[0]}, e.g. {_show(requested / ('musicrec' + suffixes[0]))}.")
    if requested.suffix.lower() not in suffixes:
        raise OutputRefused(
            f"refusing to write {what} to {_show(requested)}: the file name must end in {expected} "
            f"(it ends in {terminal_text(repr(requested.suffix)) if requested.suffix else 'no extension'}); "
            f"give a name such as "
            f"{_show(requested.stem.strip() or 'output')}{suffixes[0]}.")
    target = requested
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):  # the folder is checked below
        st = None
    except OSError as err:
        raise OutputRefused(f"cannot write {what} to {_show(requested)}: {err.strerror or err}.") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(requested))
        try:
            st = os.stat(target)
        except OSError as err:
            raise OutputRefused(
                f"refusing to write {what} to {_show(requested)}: it is a symbolic link to {_show(target)}, "
                f"which cannot be used ({err.strerror or err}); remove the link or choose another name.") from None
        if target.suffix.lower() not in suffixes:
            raise OutputRefused(
                f"refusing to write {what} to {_show(requested)}: it is a symbolic link to {_show(target)}, "
                f"whose name does not end in {expected}; remove the link or choose another name.")
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputRefused(
                f"refusing to write {what} to {_show(requested)}: it is a folder; give a file name "
                f"ending in {suffixes[0]}, e.g. {_show(requested / ('musicrec' + suffixes[0]))}.")
        if not stat.S_ISREG(st.st_mode):
            raise OutputRefused(
                f"refusing to write {what} to {_show(requested)}: it is a device, FIFO or other special file, "
                f"not a regular file; choose another name.")
        if not force and not is_ours(target):
            raise OutputRefused(
                f"refusing to replace {_show(requested)}: it exists and was not written by musicrec. "
                "Choose another name, or move that file away first.",
                forceable=True)
    _check_folder_writable(target.parent, what=what, requested=requested)
    return target


def _check_folder_writable(folder: Path, *, what: str, requested: Path) -> None:
    """The folder exists and is writable, or its nearest existing ancestor is (to create it)."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        cannot = f", so the folder {_show(folder)} cannot be created" if existing != folder else ""
        raise OutputRefused(
            f"cannot write {what} to {_show(requested)}: {_show(existing)} is not a folder{cannot}; "
            "choose another place.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputRefused(
            f"cannot write {what} to {_show(requested)}: the folder {_show(existing)} is not writable "
            f"(permission denied or read-only); choose another place.")


def _temp_name(name: str) -> str:
    """``.NAME.musicrec-XXXXXXXX.tmp``, shortened to fit the file-name limit."""
    token = secrets.token_hex(4)
    room = _NAME_MAX - len(f".{TEMP_INFIX}{token}{TEMP_SUFFIX}".encode())
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{TEMP_INFIX}{token}{TEMP_SUFFIX}"


def write_atomically(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``write(handle)`` to a temporary file, then rename it onto ``target``.

    The temporary file is created exclusively (``O_CREAT | O_EXCL``) in the target's
    folder with musicrec's own name (``.NAME.musicrec-XXXXXXXX.tmp``), synced to disk, and
    renamed over ``target``: readers see the old file or the complete new one. An
    existing target keeps its permission bits. On any error the temporary file, and only
    it, is removed and the error re-raised.

    Parameters
    ----------
    target : Path
        Checked beforehand with :func:`check_output_path`. Missing folders are created.
    write : callable
        Writes the content to the binary handle it is given.

    Raises
    ------
    OSError
        If the folder, the temporary file or the rename fails (e.g. the disk is full).
    """
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for attempt in range(100):
        temp = folder / _temp_name(target.name)
        try:
            fd = os.open(temp, flags, 0o666)
            break
        except FileExistsError:
            if attempt == 99:
                raise
    try:
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            write(handle)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not possible everywhere, and not needed for correctness
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -- vector files (musicrec embed) -------------------------------------------------------
EMBED_ARRAYS = ("files", "vectors")
# A third array marks the file as musicrec's: "files" and "vectors" are names anyone may use.
EMBED_MARKER = "written_by_musicrec"


def is_embed_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is a ``.npz`` that ``musicrec embed`` wrote.

    That is a zip of exactly the arrays ``files`` (1-d text), ``vectors`` (2-d floats,
    one row per file) and the marker ``written_by_musicrec``. Only the array headers are read;
    nothing is unpickled.
    """
    try:
        with open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            if sorted(archive.namelist()) != sorted(f"{name}.npy" for name in (*EMBED_ARRAYS, EMBED_MARKER)):
                return False
            headers = {}
            for name in EMBED_ARRAYS:
                with archive.open(f"{name}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        headers[name] = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        headers[name] = np.lib.format.read_array_header_2_0(member)
                    else:
                        return False
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError):
        return False
    (files_shape, _, files_dtype), (vectors_shape, _, vectors_dtype) = headers["files"], headers["vectors"]
    return (len(files_shape) == 1 and files_dtype.kind == "U" and len(vectors_shape) == 2
            and vectors_dtype.kind == "f" and vectors_shape[0] == files_shape[0])


def check_embed_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check that ``musicrec embed`` may write its ``.npz`` to ``path``; see :func:`check_output_path`.

    Raises
    ------
    OutputRefused
        If the name does not end in ``.npz``, or the target is a folder, a special file,
        or an existing file that is not a musicrec vector file (unless ``force``).
    """
    return check_output_path(path, suffixes=(".npz",), what="song vectors", is_ours=is_embed_file, force=force)


def write_embed_npz(path: str | os.PathLike, *, files: np.ndarray, vectors: np.ndarray, force: bool = False) -> Path:
    """Save ``files`` and ``vectors`` as an uncompressed ``.npz``, atomically.

    Parameters
    ----------
    path : str or PathLike
        Must end in ``.npz``; an existing file is replaced only if musicrec wrote it, or
        if ``force``.
    files : ndarray of str
        One file name per row of ``vectors``.
    vectors : ndarray of float
        Shape ``(len(files), d)``.
    force : bool
        Replace an existing regular file that musicrec did not write.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    OutputRefused
        As :func:`check_embed_path`.
    OSError
        If writing fails; an existing file is then left as it was.
    """
    target = check_embed_path(path, force=force)
    marker = {EMBED_MARKER: np.array(True)}
    write_atomically(target, lambda handle: np.savez(handle, files=files, vectors=vectors, **marker))
    return target
