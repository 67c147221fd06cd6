"""The process around musicrec: its environment variables and TensorFlow's logging, in one place.

Environment variables musicrec reads (nothing else in the package reads ``os.environ``):

``MUSICREC_LIBRARY``
    The library file used when ``--library`` is not given (:func:`library_override`).
``MUSICREC_DEBUG``
    Set to anything but ``""`` or ``0``: TensorFlow's start-up messages and warnings are
    shown, not hidden (:func:`debug`).
``XDG_DATA_HOME``
    Where ``musicrec-gui --install-desktop-entry`` puts the desktop entry, icon and metainfo
    (:func:`xdg_data_home`; ``~/.local/share`` when unset, as the XDG spec says).
``MPD_HOST``, ``MPD_PORT``
    The MPD server ``musicrec mpd`` talks to when ``--host``/``--port`` are not given, as
    ``mpc`` reads them (``MPD_HOST`` may be ``password@host``) (:func:`mpd_address`).

TensorFlow (and its absl logger) print notices on stderr that say nothing to a user;
:func:`quiet_tensorflow` turns them down, before or after TensorFlow is imported.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LIBRARY_ENV = "MUSICREC_LIBRARY"
DEBUG_ENV = "MUSICREC_DEBUG"


def library_override() -> Path | None:
    """The library file named by ``$MUSICREC_LIBRARY``, or None when it is unset or empty."""
    value = os.environ.get(LIBRARY_ENV)
    return Path(value) if value else None


def xdg_data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset, empty or relative (the XDG spec ignores those)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"


MPD_DEFAULT_HOST = "localhost"
MPD_DEFAULT_PORT = 6600


def mpd_address() -> tuple[str | None, str | None, str | None]:
    """``(host, port, password)`` from ``$MPD_HOST`` (``[password@]host``) and ``$MPD_PORT``; None where unset."""
    host = os.environ.get("MPD_HOST") or None
    password = None
    if host and "@" in host and not host.startswith("@"):  # "@name" is an abstract socket, not a password
        password, host = host.rsplit("@", 1)
    return host, os.environ.get("MPD_PORT") or None, password


def debug() -> bool:
    """Whether ``$MUSICREC_DEBUG`` asks for TensorFlow's own messages (any value but ``""`` and ``0``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def quiet_tensorflow() -> None:
    """Turn down TensorFlow's C++ and Python logging, unless :func:`debug`.

    Call it before TensorFlow is imported (its C++ logger reads ``TF_CPP_MIN_LOG_LEVEL`` once,
    at import); calling it again afterwards also quietens the Python loggers. A level the user
    set in ``TF_CPP_MIN_LOG_LEVEL`` is kept.
    """
    if debug():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # errors only: no oneDNN or CPU-feature notices
    if "absl.logging" in sys.modules:
        sys.modules["absl.logging"].set_verbosity("error")
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
