"""musicrec: find the songs in your own music folder that sound like the one you hear."""

__version__ = "0.1.0"
