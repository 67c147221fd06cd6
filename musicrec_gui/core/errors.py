"""The one base class of every error musicrec reports to a user."""

from __future__ import annotations


class MusicrecError(Exception):
    """An error whose message is written for the user: what happened, what was expected, how to fix it."""
