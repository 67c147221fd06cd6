"""Stored song vectors of the wrong length: one clear error, never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicrec_gui import cli
from musicrec_gui.core.encoder import EncoderConfig, bundled_encoder_path
from musicrec_gui.core.library import FileIdentity, Library, LibraryError
from musicrec_gui.core.recommend import StoredVectorsError, VectorIndex

ENCODER = {**json.loads(bundled_encoder_path().with_suffix(".json").read_text()),
           "name": "enc", "version": "1", "weights_sha256": "0123456789ab" + "0" * 52, "embedding_size": 16}
KEY, ANALYSIS = EncoderConfig.from_dict(ENCODER).key, "spread8"  # the key includes the features' fingerprint


def _library(tmp_path, lengths: list[int]) -> Library:
    """A library with one done track per entry of ``lengths``, its vector that many floats long."""
    library = Library(tmp_path / "lib.sqlite3")
    found = [FileIdentity(str(tmp_path / f"song{i}.ogg"), 1, 1) for i in range(len(lengths))]
    todo = library.plan_scan(found, encoder_key=KEY, analysis_key=ANALYSIS).todo
    for track, n in zip(todo, lengths):
        vector = np.arange(1, n + 1, dtype=np.float32)
        library.record_result(track.id, encoder_key=KEY, analysis_key=ANALYSIS, vector=vector,
                              slice_vectors=vector[None], offset_seconds=0.0, title=track.title, artist="",
                              album="", duration=1.0)
    return library


def test_vectors_of_different_lengths_are_a_library_error(tmp_path):
    library = _library(tmp_path, [16, 16, 15])
    with pytest.raises(StoredVectorsError) as caught:
        VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS)
    message = str(caught.value)
    assert isinstance(caught.value, LibraryError) and "\n" not in message
    assert "1 of 3 vectors that are not 16" in message and "musicrec scan" in message and str(library.path) in message


def test_a_vector_that_is_not_whole_float32s_is_a_library_error(tmp_path):
    library = _library(tmp_path, [16, 16])
    library._conn.execute("UPDATE vectors SET vector = x'010203' WHERE track_id = 1")
    with pytest.raises(StoredVectorsError, match="damaged"):
        VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS, dimension=16)


def test_vectors_of_another_length_than_the_encoders_are_refused(tmp_path):
    library = _library(tmp_path, [8, 8, 8])
    assert len(VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS)) == 3
    assert len(VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS, dimension=8)) == 3
    with pytest.raises(StoredVectorsError, match="found 3 of 3 vectors that are not 16 float32 numbers long; expected 16 numbers each"):
        VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS, dimension=16)
    assert len(VectorIndex.from_library(library, encoder_key="other", analysis_key=ANALYSIS, dimension=16)) == 0


def test_empty_vectors_are_refused(tmp_path):
    library = _library(tmp_path, [0, 0])
    with pytest.raises(StoredVectorsError, match="hold 0 numbers"):
        VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS)


def test_rows_whose_lengths_only_add_up_are_refused(tmp_path):
    library = _library(tmp_path, [12, 20])
    with pytest.raises(StoredVectorsError):
        VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS, dimension=16)


def test_cli_similar_reports_damaged_vectors_in_one_line(tmp_path, capsys):
    encoder = tmp_path / "enc.json"
    encoder.write_text(json.dumps(ENCODER))
    library = _library(tmp_path, [16, 15])
    library.close()
    code = cli.main(["--library", str(tmp_path / "lib.sqlite3"), "similar", "song0", "--encoder", str(encoder)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", out
    assert len(err.splitlines()) == 1 and err.startswith("musicrec: error: The song vectors stored in "), err


def test_a_scan_rewrites_vectors_of_the_wrong_length(tmp_path):
    library = _library(tmp_path, [16, 15])
    plan = library.plan_scan([FileIdentity(str(tmp_path / f"song{i}.ogg"), 1, 1) for i in range(2)],
                             encoder_key=KEY, analysis_key=ANALYSIS, dimension=16)
    assert [t.title for t in plan.todo] == ["song1"] and plan.cached == 1
