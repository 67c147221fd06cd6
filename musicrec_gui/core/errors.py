"""The one base class of every error musicrec reports to a user, and the kinds of failed songs.

Catch :class:`MusicrecError` for "expected, user-facing" problems: its message is written for
the user (what happened, what was expected, how to fix it) and is shown as it is, without a
traceback. Anything else that escapes the core is a bug. The subclasses live beside the code
that raises them:

==========================================  ============================================
``core.library.LibraryError``               the library file cannot be used; subclasses
                                            ``LibraryBusyError``, ``LibraryReadOnlyError``,
                                            ``LibraryFullError``, ``LibraryCorruptError``,
                                            ``NotALibraryError``, ``StoredVectorsError``
``core.audio.AudioError``                   one file could not be decoded; carries a
                                            :class:`FailureKind` as ``kind``
``core.encoder.EncoderError``               the encoder files are missing, damaged or do
                                            not fit together
``core.config.ConfigError``                 feature parameters or analysis settings out of
                                            range (also a ``ValueError``)
``core.output.OutputRefused``               musicrec will not write a playlist or ``.npz``
                                            there (also a ``ValueError``)
``core.playlist.PlaylistError``             no song of a playlist can be written (also a
                                            ``ValueError``)
==========================================  ============================================

``core.audio.DecodeCancelled`` is not one: it means the user asked to stop, not that anything
went wrong.
"""

from __future__ import annotations

import enum


class MusicrecError(Exception):
    """An error whose message is written for the user: what happened, what was expected, how to fix it."""


class FailureKind(str, enum.Enum):
    """Why a song could not be analysed: stored with the message, in the library and in scan events.

    The kind is decided where the error is raised (the decoder knows a vanished file from one
    it may not read, or from one that is not audio at all). A ``FailureKind`` is a ``str``:
    ``kind == "empty"`` holds, and its value is what the library stores.

    Kinds in :data:`RETRIED_KINDS` (``timed_out``, ``vanished``, ``changed``) say nothing
    lasting about the file and are tried again by the next scan; the others wait until the
    file changes or the user asks to retry.
    """

    EMPTY = "empty"  # 0 bytes
    TRUNCATED = "truncated"  # a known format (by its first bytes) whose data is cut short or damaged
    NOT_AUDIO = "not_audio"  # no audio format announced and no decoder knows it, or its header claims impossible audio
    UNREADABLE = "unreadable"  # permission denied, not a regular file, an I/O error
    VANISHED = "vanished"  # gone between the listing and the reading
    CHANGED = "changed"  # rewritten while it was being read
    TIMED_OUT = "timed_out"  # the decoder ran past its time limit, or hung
    TOO_SHORT = "too_short"  # a readable file that holds no audio samples
    TOO_LARGE = "too_large"  # ran out of memory
    ENCODER = "encoder"  # the encoder failed on it (a scan stops then; nothing is stored against the song)
    OTHER = "other"  # an unexpected error (a bug): the message says which

    __str__ = str.__str__  # "empty", not "FailureKind.EMPTY", in messages and f-strings
    __format__ = str.__format__

    @property
    def label(self) -> str:
        """A few words for the user ("damaged or truncated"), the same in the app and the CLI."""
        return _LABELS[self]

    @classmethod
    def parse(cls, value: object) -> "FailureKind":
        """The kind named by ``value``; ``timeout`` (schema 2's name) is ``TIMED_OUT``, anything unknown ``OTHER``."""
        if isinstance(value, cls):
            return value
        try:
            return cls(_ALIASES.get(value, value))
        except ValueError:
            return cls.OTHER


_LABELS = {
    FailureKind.EMPTY: "empty file",
    FailureKind.TRUNCATED: "damaged or truncated",
    FailureKind.NOT_AUDIO: "not audio",
    FailureKind.UNREADABLE: "cannot be read",
    FailureKind.VANISHED: "file vanished",
    FailureKind.CHANGED: "changed while read",
    FailureKind.TIMED_OUT: "timed out",
    FailureKind.TOO_SHORT: "no audio samples",
    FailureKind.TOO_LARGE: "too large",
    FailureKind.ENCODER: "encoder failed",
    FailureKind.OTHER: "unexpected error",
}
_ALIASES = {"timeout": "timed_out"}

# Failures of these kinds are tried again on the next scan: they say nothing lasting about the file.
RETRIED_KINDS = frozenset({FailureKind.TIMED_OUT, FailureKind.VANISHED, FailureKind.CHANGED})


def os_error_reason(err: OSError, path: str | None = None) -> str:
    """One plain sentence for a file the operating system would not let musicrec read.

    ``path`` tells a dangling link from a file that disappeared.
    """
    import errno
    import os

    number = err.errno
    if number == errno.ENOENT:
        if path is not None and os.path.islink(path):
            return "cannot be read: it is a link to a file that does not exist"
        return "the file disappeared during the scan (moved or deleted)"
    if number == errno.ELOOP:
        return "cannot be read: it is a link that leads back to itself (a link loop)"
    if number in (errno.EACCES, errno.EPERM):
        return "cannot be read: permission denied"
    if number == errno.EISDIR:
        return "cannot be read: it is a folder, not a file"
    text = (err.strerror or str(err) or type(err).__name__).strip()
    return f"cannot be read: {text[:1].lower()}{text[1:]}"


def not_a_file_reason(mode: int) -> str:
    """One plain sentence for a path named like a song that is not a regular file (``mode`` from ``os.stat``)."""
    import stat

    what = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return f"cannot be read: it is {what}, not an audio file" if what != "not a regular file" else \
        "cannot be read: it is not a regular file"
