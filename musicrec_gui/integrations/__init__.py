"""musicrec where people already are: the desktop's application menu, MPD, beets.

Nothing here is imported by the core; the optional packages (python-mpd2, beets) are imported
only when the feature that needs them runs, with a message that says what to install.
"""
