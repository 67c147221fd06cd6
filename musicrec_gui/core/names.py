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
