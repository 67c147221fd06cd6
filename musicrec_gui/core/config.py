"""Frozen configuration objects shared by the app, the CLI and ``training/``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from musicrec_gui.core.errors import MusicrecError

AnalysisMode = Literal["spread", "excerpt", "full"]
ANALYSIS_MODES = ("spread", "excerpt", "full")
# The front ends features.py knows: "logmel-db" (dB relative to the song's peak, [0, 1]) and
# "musicnn" (log10(1 + 10000 * mel), as musicnn's models were trained on).
FEATURE_KINDS = ("logmel-db", "musicnn")


class ConfigError(MusicrecError, ValueError):
    """Feature parameters or analysis settings of the wrong type or out of range.

    A ``ValueError`` too, as it was before it became a :class:`MusicrecError`. The message names
    the parameter, its value and what is expected.
    """


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the log-mel front end.

    The defaults are the original recipe's (Shenoy, after Dieleman): 22 050 Hz
    mono, 128 mel bands up to 8 kHz, hop 512 so one 128-frame slice is about
    2.97 s. The config travels inside every encoder's JSON, and the encoder is
    fed exactly what it was trained on.

    ``kind`` picks the compression of the mel power (see ``features.py``):
    ``"logmel-db"`` (decibels relative to the song's peak, clipped at ``top_db``,
    scaled to [0, 1]) or ``"musicnn"`` (``log10(1 + 10000 * mel)``, no per-song
    normalisation; ``top_db`` is unused). A JSON without ``kind`` means ``"logmel-db"``.
    """

    kind: str = "logmel-db"
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    slice_frames: int = 128
    top_db: float = 80.0
    # Bump when the numeric output of features.py changes for the same input.
    version: int = 1

    @property
    def slice_seconds(self) -> float:
        return self.slice_frames * self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FeatureConfig":
        """Build a config from its JSON form, checking every value.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict`. Missing keys take the defaults; whole
            numbers are accepted where a float is expected.

        Raises
        ------
        ConfigError
            A ValueError, if ``data`` is not a dict, has an unknown key, or a value of the wrong type
            or out of range. The message names the key, the value and what was expected.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"the feature parameters are {describe_json_value(data)}; expected a JSON object "
                             "such as {\"sample_rate\": 22050, \"n_mels\": 128, ...}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            shown = ", ".join(_short(name) for name in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ConfigError(
                f"Unknown feature parameters {shown}{more}; expected only {', '.join(sorted(known))}. "
                "The encoder was made by a newer musicrec: upgrade musicrec or re-export the model."
            )
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "kind":
                if not isinstance(value, str) or value not in FEATURE_KINDS:
                    raise ConfigError(f"feature parameter 'kind' is {describe_json_value(value)}; expected one of "
                                     f"{', '.join(repr(k) for k in FEATURE_KINDS)}. An encoder made for another "
                                     "front end needs a newer musicrec: upgrade musicrec or re-export the model.")
                values[f.name] = value
                continue
            low, high = _FEATURE_RANGES[f.name]
            if isinstance(f.default, int):
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise ConfigError(f"feature parameter {f.name!r} is {describe_json_value(value)}; "
                                     f"expected a whole number from {low} to {high}.")
            else:
                # The range test also refuses NaN and infinities (json.loads accepts them).
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                    raise ConfigError(f"feature parameter {f.name!r} is {describe_json_value(value)}; "
                                     f"expected a number from {low:g} to {high:g}.")
                value = float(value)
            values[f.name] = value
        config = cls(**values)
        if not config.fmin < config.fmax <= config.sample_rate / 2:
            raise ConfigError(f"feature parameters fmin={config.fmin:g} and fmax={config.fmax:g} do not fit "
                             f"sample_rate={config.sample_rate}; expected 0 <= fmin < fmax <= sample_rate / 2.")
        return config

    @property
    def fingerprint(self) -> str:
        """Short stable hash of every parameter, used as a cache key."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# Accepted range of each feature parameter in an encoder's JSON: generous, but a
# value outside it is a typo or a hostile file, not a front end anyone trained on.
_FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "sample_rate": (1000, 384_000),
    "n_fft": (16, 65_536),
    "hop_length": (1, 65_536),
    "n_mels": (1, 4096),
    "fmin": (0.0, 192_000.0),
    "fmax": (1.0, 192_000.0),
    "slice_frames": (1, 65_536),
    "top_db": (1.0, 400.0),
    "version": (1, 1_000_000),
}


def describe_json_value(value: Any) -> str:
    """A JSON value for an error message: short, on one line, with its JSON type."""
    kind = {bool: "true/false", int: "a whole number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return kind
    return f"{_short(value)} ({kind})"


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a hostile file may hold a megabyte-long string)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"a number of more than {limit} digits"  # repr of a huge int is slow, or refused
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class AnalysisSettings:
    """How much of each song is analysed.

    ``mode="spread"`` (the default) analyses ``patches`` slices spread evenly over the
    whole song, its first and last 5 % left out, decoding only the audio under them by
    seeking; a song too short for that uses the slices it has. ``mode="excerpt"`` decodes
    only a centred ``excerpt_seconds`` window (the length of the original's FMA clips);
    ``mode="full"`` the whole track, with at most ``max_slices`` evenly spaced slices,
    decoding only the audio under those slices so hour-long files stay bounded
    (``audio.load_song_windows``).
    """

    mode: AnalysisMode = "spread"
    excerpt_seconds: float = 30.0
    max_slices: int = 64
    patches: int = 8

    def __post_init__(self) -> None:
        if self.mode not in ANALYSIS_MODES:
            raise ConfigError(f"Unknown analysis mode {self.mode!r}; expected one of {', '.join(ANALYSIS_MODES)}.")
        if not self.excerpt_seconds > 0:
            raise ConfigError(f"excerpt_seconds must be positive, got {self.excerpt_seconds}.")
        if self.max_slices < 1:
            raise ConfigError(f"max_slices must be at least 1, got {self.max_slices}.")
        if not 1 <= self.patches <= 256:
            raise ConfigError(f"patches must be 1 to 256, got {self.patches}.")

    @property
    def key(self) -> str:
        """Cache key part: vectors from different analyses are not mixed."""
        if self.mode == "spread":
            return f"spread{self.patches}"
        if self.mode == "excerpt":
            return f"excerpt{self.excerpt_seconds:g}"
        # "s": slices decoded window by window, dB relative to the loudest analysed slice rather than
        # to the whole song's peak (older "full64" vectors were not), so the two are not mixed.
        return f"full{self.max_slices}s"
