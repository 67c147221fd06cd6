"""Frozen configuration objects shared by the app, the CLI and ``training/``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

AnalysisMode = Literal["excerpt", "full"]


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the log-mel front end.

    The defaults are the original recipe's (Shenoy, after Dieleman): 22 050 Hz
    mono, 128 mel bands up to 8 kHz, hop 512 so one 128-frame slice is about
    2.97 s. The config travels inside every encoder's JSON, and the encoder is
    fed exactly what it was trained on.
    """

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
    def from_dict(cls, data: dict[str, Any]) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"Unknown feature parameters {sorted(unknown)}; expected only {sorted(known)}. "
                "The encoder was made by a newer musicrec: upgrade musicrec or re-export the model."
            )
        return cls(**data)

    @property
    def fingerprint(self) -> str:
        """Short stable hash of every parameter, used as a cache key."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True)
class AnalysisSettings:
    """How much of each song is analysed.

    ``mode="excerpt"`` decodes only a centred ``excerpt_seconds`` window (the
    length of the original's FMA clips); ``mode="full"`` the whole track, with at
    most ``max_slices`` evenly spaced slices, decoding only the audio under those
    slices so hour-long files stay bounded (``audio.load_song_windows``).
    """

    mode: AnalysisMode = "excerpt"
    excerpt_seconds: float = 30.0
    max_slices: int = 64

    def __post_init__(self) -> None:
        if self.mode not in ("excerpt", "full"):
            raise ValueError(f"Unknown analysis mode {self.mode!r}; expected 'excerpt' or 'full'.")
        if self.excerpt_seconds <= 0:
            raise ValueError(f"excerpt_seconds must be positive, got {self.excerpt_seconds}.")
        if self.max_slices < 1:
            raise ValueError(f"max_slices must be at least 1, got {self.max_slices}.")

    @property
    def key(self) -> str:
        """Cache key part: vectors from different analyses are not mixed."""
        if self.mode == "excerpt":
            return f"excerpt{self.excerpt_seconds:g}"
        # "s": slices decoded window by window, dB relative to the loudest analysed slice rather than
        # to the whole song's peak (older "full64" vectors were not), so the two are not mixed.
        return f"full{self.max_slices}s"
