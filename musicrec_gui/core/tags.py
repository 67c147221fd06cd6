"""Tags a person understands: a song's most probable tags from an encoder's tag head."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def top_tags(probabilities: np.ndarray | None, names: Sequence[str], *, count: int = 5,
             minimum: float = 0.0) -> list[tuple[str, float]]:
    """The ``count`` most probable tags, best first.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n_tags,)] or None
        A song's mean tag probabilities (``Library.tag_probabilities``).
    names : sequence of str [shape=(n_tags,)]
        The encoder's tag names (its JSON's ``labels``).
    count : int
    minimum : float
        Leave out tags less probable than this.

    Returns
    -------
    list of (str, float)
        Empty when there are no probabilities or they do not match the names.
    """
    if probabilities is None or len(probabilities) != len(names) or not len(names):
        return []
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:count]
    return [(names[i], float(probabilities[i])) for i in order if probabilities[i] >= minimum]


def tags_text(tags: list[tuple[str, float]]) -> str:
    """"ambient 41 %, electronic 22 %" — the same in the app and the CLI."""
    return ", ".join(f"{name} {round(100 * probability)} %" for name, probability in tags)


def top_tag_names(probabilities: np.ndarray, names: Sequence[str], *, count: int = 4,
                  minimum: float = 0.05) -> list[tuple[str, ...]]:
    """Each song's most probable tag names, as :func:`top_tags` gives them, for many songs at once.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n, n_tags)]
        ``Library.tag_table`` rows.
    names : sequence of str [shape=(n_tags,)]
    count, minimum
        As for :func:`top_tags`.

    Returns
    -------
    list of tuple of str [n]
        Empty tuples when the probabilities do not match the names.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(names) or not len(names):
        return [()] * (len(probabilities) if probabilities.ndim == 2 else 0)
    count = min(count, len(names))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    kept = np.take_along_axis(probabilities, order, axis=1) >= minimum
    return [tuple(names[j] for j, keep in zip(row, keeps) if keep) for row, keeps in zip(order, kept)]
