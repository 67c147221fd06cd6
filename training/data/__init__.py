"""Datasets → track-level splits → cached log-mel windows (memory-mapped .npy) → slices.

=========================  ==============================================================
``datasets.py``            :class:`LabelledTrack` and the readers: the soundtrack corpus,
                           FMA, a folder per label, an unlabelled folder; near-duplicate
                           grouping of file names
``splits.py``              deterministic track-level splits, whole groups at a time
``window_cache.py``        the app's log-mel of each track's 30-s windows, decoded once and
                           memory-mapped, with the windows' offsets and MFCC statistics
``sampling.py``            slices for training (random window, random offset)
=========================  ==============================================================

Everything is re-exported here: ``from training.data import corpus_tracks, split_tracks``.
"""

from training.data.datasets import (
    LabelledTrack,
    corpus_tracks,
    fma_audio_path,
    fma_tracks,
    folder_tracks,
    near_duplicate_key,
    read_fma_tracks_csv,
    unlabelled_tracks,
)
from training.data.sampling import evenly_spaced_slices, random_slice, random_slice_at
from training.data.splits import SPLITS, assert_disjoint, split_tracks, with_split
from training.data.window_cache import (
    EXCERPT_SECONDS,
    WindowCache,
    build_cache,
    cache_key,
    load_cache,
    mfcc_stats,
    track_indices,
    window_frames,
    window_offsets,
)

__all__ = [
    "EXCERPT_SECONDS", "SPLITS", "LabelledTrack", "WindowCache", "assert_disjoint", "build_cache", "cache_key",
    "corpus_tracks", "evenly_spaced_slices", "fma_audio_path", "fma_tracks", "folder_tracks", "load_cache",
    "mfcc_stats", "near_duplicate_key", "random_slice", "random_slice_at", "read_fma_tracks_csv", "split_tracks",
    "track_indices", "unlabelled_tracks", "window_frames", "window_offsets", "with_split",
]
