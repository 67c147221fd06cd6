"""Showing file names and tags that are not valid UTF-8."""

from __future__ import annotations


def display_text(text: str) -> str:
    """``text`` made safe to show and to store as UTF-8.

    File names that are not valid UTF-8 reach Python with each stray byte as a
    surrogate escape (PEP 383). Such bytes almost always come from Latin-1/Windows-1252
    names (``caf\\xe9.mp3``), so each one is shown as that character; valid parts stay
    as they are. NUL characters are dropped.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Encodable as UTF-8.
    """
    if text.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text.replace("\x00", "")
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            ch = bytes([ord(ch) - 0xDC00]).decode("cp1252", errors="replace")
        elif "\ud800" <= ch <= "\udfff":
            ch = "\ufffd"
        out.append(ch)
    return "".join(out).replace("\x00", "")


# C0 controls, DEL and C1 controls (U+0080..U+009F: U+009B is a one-character CSI on
# many terminals). None of them is text a listing should pass on.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Line separators and bidirectional overrides/isolates: they break lines or reorder what is shown
# ("evil\u202egnp.mp3" reads as "evilmp3.png"), so a listing shows them as escapes too.
_FORMATTING = [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TERMINAL_TABLE = {code: f"\\x{code:02x}" for code in _CONTROLS} | {code: f"\\u{code:04x}" for code in _FORMATTING}
# Unicode line and paragraph separators end a line for some readers as well.
_LINE_TABLE = {code: " " for code in [*_CONTROLS, 0x2028, 0x2029]}


def terminal_text(text: str) -> str:
    """``text`` made safe to print to a terminal.

    Tags and file names are chosen by whoever made the file: an ESC or CSI in them would
    let a song clear the screen, retitle the window or fake output. Every control
    character (C0 including tab and newline, DEL, and C1) is shown as a visible
    ``\\xNN`` escape; names that are not valid UTF-8 are shown as by :func:`display_text`.

    Parameters
    ----------
    text : str
        A title, artist, file name or error message that came from a file.

    Returns
    -------
    str
        Printable text with no control characters.
    """
    return display_text(text).translate(_TERMINAL_TABLE)


def single_line_text(text: str) -> str:
    """``text`` as one line without control characters: each becomes a space.

    For line-based formats such as M3U, where a newline in a title would start a new
    entry. Names that are not valid UTF-8 are shown as by :func:`display_text`.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        No C0/C1 control characters, DEL, or U+2028/U+2029 line separators.
    """
    return display_text(text).translate(_LINE_TABLE)
