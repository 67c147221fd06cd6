"""The app's preferences: what the window remembers between runs, declared once with their
defaults and stored in QSettings.

(Vocabulary: *preferences* are these; *analysis settings* are ``core.config.AnalysisSettings``,
how much of each song is analysed; the *store* is the QSettings file that holds the preferences.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from PySide6.QtCore import QByteArray, QSettings

from musicrec_gui.core.config import ANALYSIS_MODES

ORGANISATION = "musicrec"
APPLICATION = "musicrec-gui"


@dataclass
class Preferences:
    """Everything the window remembers between runs."""

    last_folder: str = ""
    geometry: QByteArray = field(default_factory=QByteArray)
    main_splitter: QByteArray = field(default_factory=QByteArray)
    side_splitter: QByteArray = field(default_factory=QByteArray)
    outer_splitter: QByteArray = field(default_factory=QByteArray)
    left_tab: int = 0  # of the left column: 0 the song list, 1 the map
    sort_column: int = 0  # of the song list (0 = title)
    sort_descending: bool = False
    anchor_path: str = ""  # the song that was selected, selected again at start
    analysis_mode: str = "spread"  # one of core.config.ANALYSIS_MODES
    n_recommendations: int = 2
    exclude_same_artist: bool = False
    exclude_same_album: bool = False
    volume: int = 80  # percent


def open_store(path: str | None = None) -> QSettings:
    """The QSettings store: an ini file at ``path`` if given (tests), else the user's native store."""
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def load_preferences(store: QSettings) -> Preferences:
    """Read every field, falling back to its default when missing or of the wrong type."""
    defaults = Preferences()
    values = {}
    for f in dataclasses.fields(Preferences):
        default = getattr(defaults, f.name)
        raw = store.value(f.name, None)
        values[f.name] = _coerce(raw, default)
    preferences = Preferences(**values)
    if preferences.analysis_mode not in ANALYSIS_MODES:
        preferences.analysis_mode = defaults.analysis_mode
    preferences.n_recommendations = max(1, min(100, preferences.n_recommendations))
    preferences.volume = max(0, min(100, preferences.volume))
    return preferences


def save_preferences(store: QSettings, preferences: Preferences) -> None:
    for f in dataclasses.fields(Preferences):
        store.setValue(f.name, getattr(preferences, f.name))
    store.sync()


def _coerce(raw, default):
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes")
            return bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, QByteArray):
            return raw if isinstance(raw, QByteArray) else QByteArray(bytes(raw))
        return str(raw)
    except (TypeError, ValueError):
        return default
