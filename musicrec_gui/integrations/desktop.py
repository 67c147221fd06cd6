"""The desktop entry: ``musicrec-gui`` in the application menu, with its icon and AppStream metainfo.

``musicrec-gui --install-desktop-entry`` writes three files below ``$XDG_DATA_HOME``
(``~/.local/share``)::

    applications/io.github.musicrec.musicrec.desktop
    icons/hicolor/scalable/apps/io.github.musicrec.musicrec.svg
    metainfo/io.github.musicrec.musicrec.metainfo.xml

Each carries the line :data:`MARK`; a file at one of those paths without it (another program's, or
the user's own) is never replaced or removed, and the install then writes nothing at all.
``--uninstall-desktop-entry`` removes only marked files. No Qt here.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from musicrec_gui import __version__
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.names import display_text
from musicrec_gui.core.output import write_atomically
from musicrec_gui.core.resources import resource_path
from musicrec_gui.core.runtime import xdg_data_home

APP_ID = "io.github.musicrec.musicrec"
# No "--" in it: the mark goes into XML comments too, where a double hyphen is not allowed.
MARK = "written by musicrec-gui (install-desktop-entry); its uninstall-desktop-entry option removes it"
# The mark must lie this near the start of a file for musicrec to call it its own.
_MARK_WITHIN = 1024
_CONSOLE_SCRIPT = "musicrec-gui"


class DesktopEntryError(MusicrecError):
    """The desktop entry cannot be installed or removed (a file musicrec did not write is in the way)."""


@dataclass(frozen=True)
class EntryFile:
    what: str  # for messages: "desktop entry", "icon", "metainfo"
    path: Path
    content: bytes


def icon_path() -> Path:
    """The app's icon as shipped (SVG), for the window and the installed entry."""
    return resource_path("desktop", "musicrec.svg")


def launcher(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The command line the menu runs: this installation's ``musicrec-gui``, by absolute path.

    An absolute path, so the entry works where ``~/.local/bin`` (pipx) is not on the desktop
    session's PATH, and starts the same installation that wrote it. When musicrec-gui was not
    started through its console script (``python -m musicrec_gui.gui``), this Python runs the
    module.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0)
    if script.name == _CONSOLE_SCRIPT and script.is_file():
        return [os.path.abspath(script)]
    beside = Path(executable).parent / _CONSOLE_SCRIPT
    if beside.is_file():
        return [str(beside)]
    return [os.path.abspath(executable), "-m", "musicrec_gui.gui"]


def exec_value(argv: list[str]) -> str:
    """``argv`` as a desktop entry's ``Exec`` value (Desktop Entry Specification 1.5, "The Exec key").

    An argument with a reserved character is double-quoted, with ``"`$\\`` escaped by a
    backslash inside the quotes; ``%`` is doubled (it starts a field code). Then the whole value
    is escaped as a string value (``\\`` → ``\\\\``), as the spec asks of every string.
    """
    reserved = set(' \t\n"\'\\><~|&;$*?#()`')
    out = []
    for arg in argv:
        arg = arg.replace("%", "%%")
        if any(c in reserved for c in arg):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        out.append(arg)
    return _string_value(" ".join(out))


def _string_value(text: str) -> str:
    if any(c in text for c in "\n\r\t"):
        raise DesktopEntryError(f"the path {text!r} holds a line break or tab; a desktop entry cannot name it. "
                                "Install musicrec in a folder whose path has none.")
    return text.replace("\\", "\\\\")


def entry_files(data_home: Path | None = None, command: list[str] | None = None) -> list[EntryFile]:
    """The files the desktop entry consists of, with their content (each carrying :data:`MARK`)."""
    data_home = xdg_data_home() if data_home is None else data_home
    command = launcher() if command is None else command
    for arg in command:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise DesktopEntryError(f"the path {display_text(arg)} is not valid UTF-8, which a desktop entry needs; "
                                    "install musicrec in a folder with a UTF-8 name.") from None
    template = resource_path("desktop", "musicrec.desktop.in").read_text("utf-8")
    desktop = (f"# {MARK}\n" + template.replace("@APP_ID@", APP_ID)
               .replace("@TRY_EXEC@", _string_value(command[0])).replace("@EXEC@", exec_value(command)))
    metainfo = _mark_xml(resource_path("desktop", "musicrec.metainfo.xml").read_text("utf-8")
                         .replace("@APP_ID@", APP_ID).replace("@VERSION@", __version__))
    icon = _mark_xml(icon_path().read_text("utf-8"))
    return [
        EntryFile("desktop entry", data_home / "applications" / f"{APP_ID}.desktop", desktop.encode("utf-8")),
        EntryFile("icon", data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
                  icon.encode("utf-8")),
        EntryFile("metainfo", data_home / "metainfo" / f"{APP_ID}.metainfo.xml", metainfo.encode("utf-8")),
    ]


def _mark_xml(text: str) -> str:
    declaration, rest = text.split("\n", 1) if text.startswith("<?xml") else ("", text)
    return (declaration + "\n" if declaration else "") + f"<!-- {MARK} -->\n" + rest


def is_ours(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) that carries musicrec's mark near its start."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            return MARK.encode() in handle.read(_MARK_WITHIN)
    except OSError:
        return False


def _in_the_way(path: Path) -> str | None:
    """Why musicrec may not write ``path`` (None: it is free, or musicrec's own)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"it cannot be examined ({err.strerror or err})"
    if stat.S_ISLNK(mode):
        return "it is a symbolic link musicrec did not make"
    if stat.S_ISDIR(mode):
        return "it is a folder"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if not is_ours(path):
        return "musicrec did not write it (it lacks musicrec's mark)"
    return None


def _check_platform() -> None:
    if sys.platform in ("win32", "darwin"):
        raise DesktopEntryError("desktop entries are how Linux and BSD desktops list applications; on this system "
                                "start musicrec-gui from its folder or make a shortcut to it yourself.")


def install(data_home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the desktop entry, icon and metainfo; return their paths.

    Raises
    ------
    DesktopEntryError
        If a file musicrec did not write is at one of the paths (nothing is then written), or a
        file cannot be written.
    """
    _check_platform()
    files = entry_files(data_home, command)
    blocked = [(f, why) for f in files if (why := _in_the_way(f.path)) is not None]
    if blocked:
        listing = "\n".join(f"  {display_text(str(f.path))}: {why}" for f, why in blocked)
        raise DesktopEntryError(
            f"the desktop entry was not installed, and nothing was written: a file musicrec did not write is where "
            f"it would go:\n{listing}\nmusicrec never replaces another program's files. Move or delete "
            f"{'it' if len(blocked) == 1 else 'them'} yourself if you want musicrec's entry there.")
    for entry in files:
        try:
            write_atomically(entry.path, lambda handle, data=entry.content: handle.write(data))
        except OSError as err:
            raise DesktopEntryError(f"cannot write the {entry.what} {display_text(str(entry.path))}: "
                                    f"{err.strerror or err}. Check that folder's permissions and free space; "
                                    "run the command again once fixed.") from None
    return [f.path for f in files]


@dataclass(frozen=True)
class Removal:
    removed: list[Path]
    kept: list[tuple[Path, str]]  # files at our paths that musicrec did not write, and why they stay


def uninstall(data_home: Path | None = None) -> Removal:
    """Remove the files :func:`install` wrote (only those carrying :data:`MARK`)."""
    _check_platform()
    removed, kept = [], []
    for entry in entry_files(data_home, command=["musicrec-gui"]):
        why = _in_the_way(entry.path)
        if why is not None:
            kept.append((entry.path, why))
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise DesktopEntryError(f"cannot remove {display_text(str(entry.path))}: {err.strerror or err}.") from None
        removed.append(entry.path)
    return Removal(removed, kept)
