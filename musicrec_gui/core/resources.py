"""Locate files shipped in ``resources/`` (installed as the ``musicrec_gui.resources`` package)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource, wherever the package is installed (no reliance on the cwd)."""
    root = resources.files("musicrec_gui.resources")
    return Path(str(root.joinpath(*parts)))
