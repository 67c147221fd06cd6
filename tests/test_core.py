"""Unit tests of the core modules on real decoded audio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audio_factory import tone, write
from musicrec_gui.core import audio, features
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.encoder import Encoder, EncoderError, bundled_encoder_path, file_sha256, song_vector
from musicrec_gui.core.library import SCHEMA_VERSION, Library, Track
from musicrec_gui.core.recommend import VectorIndex

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("ext, rate, channels", [
    (".wav", 8000, 1), (".flac", 44100, 2), (".ogg", 48000, 2), (".opus", 48000, 1),
    (".mp3", 44100, 2), (".m4a", 44100, 1), (".aiff", 16000, 1),
])
def test_every_format_decodes_to_mono_22050_with_the_right_pitch(tmp_path, ext, rate, channels):
    path = write(tmp_path / f"a{ext}", tone(3.0, sample_rate=rate, freqs=(440.0,), channels=channels), rate)
    y = audio.load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / 22050 - 3.0) < 0.1  # codecs may pad a little
    spectrum = np.abs(np.fft.rfft(y[2205:-2205]))
    peak_hz = np.argmax(spectrum) * 22050 / len(y[2205:-2205])
    assert abs(peak_hz - 440.0) < 5.0


@pytest.mark.parametrize("ext", [".flac", ".ogg", ".m4a", ".mp3"])
def test_excerpt_decodes_only_the_centre(tmp_path, ext):
    # Left half 220 Hz, right half 880 Hz: a centred 2-s excerpt straddles the change.
    rate = 44100
    sig = np.concatenate([tone(10.0, sample_rate=rate, freqs=(220.0,)), tone(10.0, sample_rate=rate, freqs=(880.0,))])
    path = write(tmp_path / f"two_halves{ext}", sig, rate)
    y, offset, duration = audio.load_for_analysis(path, settings=AnalysisSettings(excerpt_seconds=2.0))
    assert abs(duration - 20.0) < 0.2 and abs(offset - 9.0) < 0.2
    assert abs(len(y) - 2 * 22050) <= 1
    first, second = y[: len(y) // 2], y[len(y) // 2:]
    def peak(x):
        return np.argmax(np.abs(np.fft.rfft(x))) * 22050 / len(x)
    assert abs(peak(first[2000:-2000]) - 220) < 10 and abs(peak(second[2000:-2000]) - 880) < 10


def test_full_mode_reads_everything(tmp_path):
    path = write(tmp_path / "a.flac", tone(40.0), 22050)
    windows, duration = audio.load_song_windows(path)
    assert abs(duration - 40.0) < 0.01 and windows.shape == (13, features.window_length())  # 40 s: 13 slices
    with pytest.raises(ValueError, match="load_song_windows"):  # never a whole song in one array
        audio.load_for_analysis(path, settings=AnalysisSettings(mode="full"))


def test_tags_are_read_without_touching_the_file(tmp_path):
    import mutagen

    path = write(tmp_path / "tagged.ogg", tone(2.0), 22050)
    meta = mutagen.File(path, easy=True)
    meta["title"], meta["artist"], meta["album"] = "Morning", "Grieg", "Peer Gynt"
    meta.save()
    before = (path.stat().st_mtime_ns, file_sha256(path))
    tags = audio.read_tags(path)
    assert (tags.title, tags.artist, tags.album) == ("Morning", "Grieg", "Peer Gynt")
    assert abs(tags.duration - 2.0) < 0.05
    assert (path.stat().st_mtime_ns, file_sha256(path)) == before
    assert audio.read_tags(tmp_path / "missing.ogg").title == "missing"


def test_find_audio_files_is_sorted_recursive_and_skips_the_rest(tmp_path):
    for name in ["b.mp3", "a.FLAC", "sub/c.opus", ".hidden.ogg", "notes.txt", "cover.jpg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [Path(p).relative_to(tmp_path).as_posix() for p in audio.find_audio_files(tmp_path)]
    assert found == ["a.FLAC", "b.mp3", "sub/c.opus"]
    with pytest.raises(NotADirectoryError, match="does not exist"):
        list(audio.find_audio_files(tmp_path / "nope"))


def test_log_mel_shape_range_and_loudness_invariance():
    config = FeatureConfig()
    y = tone(5.0, freqs=(300.0, 1200.0), noise=0.01)
    spec = features.log_mel_spectrogram(y, config=config)
    assert spec.shape == (128, 1 + len(y) // 512) and spec.dtype == np.float32
    assert spec.min() >= 0.0 and spec.max() == pytest.approx(1.0)
    quieter = features.log_mel_spectrogram(y * 0.01, config=config)
    np.testing.assert_allclose(spec, quieter, atol=1e-4)
    # 1200 Hz partial is strong, the band above fmax (8 kHz) holds nothing but the noise floor.
    band = np.argmin(np.abs(__import__("librosa").mel_frequencies(n_mels=128, fmax=8000) - 1200))
    assert spec[band].mean() > spec[-1].mean() + 0.2


def test_silence_and_short_clips_give_valid_slices():
    silence = features.song_slices(np.zeros(22050 * 4, np.float32))
    assert silence.shape == (1, 128, 128, 1) and not silence.any()
    short = features.song_slices(tone(0.1))
    assert short.shape == (1, 128, 128, 1)
    assert short[0, :, :5].any() and not short[0, :, 10:].any()  # zero padding after the clip
    empty = features.song_slices(np.zeros(0, np.float32))
    assert empty.shape == (1, 128, 128, 1)
    nan = features.song_slices(np.full(22050, np.nan, np.float32))
    assert np.isfinite(nan).all()


def test_slices_tile_without_overlap_and_cap_evenly():
    spec = np.arange(128 * 1000, dtype=np.float32).reshape(128, 1000)
    sl = features.slice_spectrogram(spec)
    assert sl.shape == (7, 128, 128, 1)
    np.testing.assert_array_equal(sl[1, :, :, 0], spec[:, 128:256])
    capped = features.slice_starts(10_000, max_slices=5)
    assert list(capped) == [0, 2432, 4992, 7424, 9984] or len(capped) == 5
    assert capped[0] == 0 and capped[-1] == (10_000 // 128 - 1) * 128


def test_thirty_second_excerpt_gives_ten_slices():
    assert features.song_slices(tone(30.0)).shape[0] == 10


def test_encoder_checks_sha256_config_and_shapes(tmp_path, tiny_encoder_path):
    import shutil

    enc = Encoder(tiny_encoder_path)
    slices = features.song_slices(tone(9.0))
    per_slice = enc.embed_slices(slices)
    assert per_slice.shape == (3, 16)
    np.testing.assert_allclose(enc.embed_song(slices), per_slice.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(song_vector(per_slice), per_slice.mean(axis=0), rtol=1e-6)

    copy = tmp_path / "copy.keras"
    shutil.copy(tiny_encoder_path, copy)
    shutil.copy(tiny_encoder_path.with_suffix(".json"), copy.with_suffix(".json"))
    with open(copy, "r+b") as handle:  # flip one byte of the weights
        handle.seek(-100, 2)
        byte = handle.read(1)
        handle.seek(-100, 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EncoderError, match="does not match its config"):
        Encoder(copy)

    shutil.copy(tiny_encoder_path, copy)
    data = json.loads(copy.with_suffix(".json").read_text())
    data["embedding_size"] = 32
    copy.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(EncoderError, match="gives 16-d vectors"):
        Encoder(copy)
    copy.with_suffix(".json").unlink()
    with pytest.raises(EncoderError, match="not found"):
        Encoder(copy)


def test_compact_encoder_is_real_and_loads():
    path = bundled_encoder_path().with_name("compact.keras")
    enc = Encoder(path)
    assert enc.config.embedding_size == 32 and enc.config.training, "bundled model must say how it was trained"
    assert enc.config.features == FeatureConfig()
    # A trained model separates a drone from noise more than two drones from each other.
    vec = {name: enc.embed_song(features.song_slices(sig)) for name, sig in {
        "drone_a": tone(6.0, freqs=(110.0, 165.0)), "drone_b": tone(6.0, freqs=(112.0, 168.0), seed=3),
        "noise": np.random.default_rng(0).standard_normal(22050 * 6).astype(np.float32) * 0.2}.items()}
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos(vec["drone_a"], vec["drone_b"]) > cos(vec["drone_a"], vec["noise"])


def _track(i, artist="", album=""):
    return Track(i, f"/m/{i}.ogg", 1, 1, f"t{i}", artist, album, 1.0, "done", "")


def test_vector_index_excludes_anchor_artist_album_and_duplicates():
    vectors = np.array([[1, 0], [1, 0], [0.9, 0.1], [0.8, 0.3], [0, 1]], dtype=np.float32)
    tracks = [_track(0, "A", "X"), _track(1, "B", "Y"), _track(2, "A", "Z"), _track(3, "C", "X"), _track(4, "D", "W")]
    index = VectorIndex(tracks, vectors)
    assert [r.track.id for r in index.similar(0, k=2)] == [2, 3]  # track 1 is the same recording
    assert [r.track.id for r in index.similar(0, k=2, drop_duplicates=False)] == [1, 2]
    assert [r.track.id for r in index.similar(0, k=2, exclude_same_artist=True)] == [3, 4]
    assert [r.track.id for r in index.similar(0, k=2, exclude_same_album=True)] == [2, 4]
    assert len(index.similar(0, k=10)) == 3
    with pytest.raises(KeyError, match="scan its folder"):
        index.similar(99)


def test_library_schema_wal_and_reopen(tmp_path):
    lib = Library(tmp_path / "l.sqlite3")
    mode = lib._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal" and lib._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    lib.set_meta("last_folder", "/x")
    lib.close()
    assert Library(tmp_path / "l.sqlite3").get_meta("last_folder") == "/x"


def test_library_refuses_newer_schema(tmp_path):
    import sqlite3

    from musicrec_gui.core.library import APP_ID, LibraryError

    path = tmp_path / "new.sqlite3"
    Library(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LibraryError, match="newer musicrec"):
        Library(path, recover=False)


def test_core_imports_no_qt_and_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    code = "import sys, musicrec_gui.core.scan, musicrec_gui.core.recommend, musicrec_gui.cli; " \
           "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'sounddevice', 'tensorflow', 'ray')]; " \
           "print(bad); sys.exit(1 if bad else 0)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stdout + probe.stderr


def test_decoding_gives_up_at_its_time_limit(tmp_path):
    path = write(tmp_path / "long.flac", tone(60.0), 22050)
    with pytest.raises(audio.AudioError, match="took too long to decode"):
        audio.load_audio(path, time_limit=1e-9)
    m4a = write(tmp_path / "long.m4a", tone(20.0), 22050)
    with pytest.raises(audio.AudioError, match="took too long to decode"):
        audio.load_audio(m4a, time_limit=1e-9)
    assert len(audio.load_audio(path)) == 60 * 22050


def test_model_with_code_inside_is_refused(tmp_path):
    import keras

    from musicrec_gui.core.encoder import EncoderConfig, save_encoder

    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)  # arbitrary Python: what safe_mode exists to refuse
    outputs = keras.layers.Dense(4)(x)
    config = EncoderConfig(name="lambda", version="1", embedding_size=4, weights_sha256="")
    save_encoder(keras.Model(inputs, outputs), tmp_path / "evil.keras", config)
    with pytest.raises(EncoderError, match="could not be loaded safely"):
        Encoder(tmp_path / "evil.keras")


def test_names_that_are_not_utf8_display_as_latin1():
    import os

    from musicrec_gui.core.names import display_text

    assert display_text(os.fsdecode(b"caf\xe9 \xe2\x99\xab.mp3")) == "café ♫.mp3"
    assert display_text("plain") == "plain" and display_text("a\x00b") == "ab"
    display_text(os.fsdecode(b"\xff\xfe\x81")).encode("utf-8")  # always encodable


def test_closeness_tells_how_a_pair_ranks_among_the_librarys_pairs():
    from musicrec_gui.core.recommend import VectorIndex, closeness_percent

    rng = np.random.default_rng(4)
    base = rng.normal(size=16)
    # Every vector close to one direction: raw cosines all above 0.9, as with real encoders.
    vectors = base + 0.3 * rng.normal(size=(60, 16))
    tracks = [Track(i, f"/m/{i}.ogg", 1, 1, f"song {i}", "", "", 1.0, "done", "") for i in range(60)]
    index = VectorIndex(tracks, vectors)
    pairs = index.pair_scores()
    assert len(pairs) == 60 * 59 // 2 and np.all(np.diff(pairs) >= 0)
    best = index.similar(0, k=1)[0]
    worst = index.similar(0, k=59)[-1]
    assert best.closeness > 0.9 and worst.closeness < best.closeness
    expected = float(np.mean(pairs < best.score))
    assert abs(best.closeness - expected) < 1e-9
    assert closeness_percent(best.closeness) == min(99, int(expected * 100))
    assert "% of song pairs" in best.closeness_text
    # A large library uses a fixed sample: the same numbers every time.
    big_vectors = rng.normal(size=(600, 8))
    big = VectorIndex([Track(i, f"/m/{i}", 1, 1, "", "", "", 1.0, "done", "") for i in range(600)], big_vectors)
    assert len(big.pair_scores()) == 20_000
    assert np.array_equal(big.pair_scores(), VectorIndex(big.tracks, big_vectors).pair_scores())


def test_the_index_centres_on_the_library_mean_from_ten_songs_up():
    from musicrec_gui.core.recommend import CENTRE_MIN_SONGS, VectorIndex

    rng = np.random.default_rng(5)
    spread = rng.normal(size=(40, 16))
    shared = 25.0 * np.abs(rng.normal(size=16))  # what every song has in common drowns the rest
    tracks = [Track(i, f"/m/{i}.ogg", 1, 1, f"song {i}", "", "", 1.0, "done", "") for i in range(40)]
    centred = VectorIndex(tracks, spread + shared)
    plain = VectorIndex(tracks, spread + shared, centre=False)
    reference = VectorIndex(tracks, spread - spread.mean(axis=0), centre=False)
    assert centred.centred and not plain.centred
    assert [r.track.id for r in centred.similar(0, k=5)] == [r.track.id for r in reference.similar(0, k=5)]
    assert min(r.score for r in plain.similar(0, k=39)) > 0.9  # raw cosines all bunched near 1
    few = VectorIndex(tracks[: CENTRE_MIN_SONGS - 1], (spread + shared)[: CENTRE_MIN_SONGS - 1])
    assert not few.centred


def test_an_index_grown_song_by_song_answers_like_one_built_at_once():
    from musicrec_gui.core.recommend import VectorIndex

    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(300, 12)) + 4.0  # a shared offset that centring must remove
    tracks = [Track(i, f"/m/{i}.ogg", 1, 1, f"song {i}", f"artist {i % 7}", "", 1.0, "done", "") for i in range(300)]
    grown = VectorIndex(tracks[:3], vectors[:3])
    for track, vector in zip(tracks[3:], vectors[3:]):
        grown.add(track, vector)
    built = VectorIndex(tracks, vectors)
    assert len(grown) == 300 and grown.centred
    # Small enough to be re-centred at every addition: exactly the answers of an index built at once.
    for anchor in (0, 150, 299):
        got = grown.similar(anchor, k=10, exclude_same_artist=True)
        want = built.similar(anchor, k=10, exclude_same_artist=True)
        assert [r.track.id for r in got] == [r.track.id for r in want]
        np.testing.assert_allclose([r.score for r in got], [r.score for r in want], atol=1e-5)
        assert all(tracks[r.track.id].artist != tracks[anchor].artist for r in got)
    np.testing.assert_allclose(np.linalg.norm(grown.unit, axis=1), 1.0, rtol=1e-5)
    # A song analysed again (a changed file) replaces its vector instead of adding a row.
    grown.add(tracks[5], vectors[7])
    assert len(grown) == 300
    assert grown.similar(5, k=1, drop_duplicates=False)[0].track.id == 7
    with pytest.raises(ValueError, match="embedding size"):
        grown.add(Track(999, "/m/x", 1, 1, "x", "", "", 1.0, "done", ""), np.zeros(5))
    empty = VectorIndex([], np.zeros((0, 12)))
    empty.add(tracks[0], vectors[0])
    empty.add(tracks[1], vectors[1])
    assert [r.track.id for r in empty.similar(0, k=1)] == [1]


def test_a_large_index_recentres_when_it_has_grown_by_a_quarter(monkeypatch):
    from musicrec_gui.core import recommend

    monkeypatch.setattr(recommend, "EXACT_CENTRE_BELOW", 50)  # what 5 000 songs do, at test size
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(400, 8)) + 3.0
    tracks = [Track(i, f"/m/{i}.ogg", 1, 1, f"song {i}", "", "", 1.0, "done", "") for i in range(400)]
    index = recommend.VectorIndex(tracks[:100], vectors[:100])
    index.add(tracks[100], vectors[100])
    np.testing.assert_allclose(index._mean[0], vectors[:100].mean(axis=0), atol=1e-5)  # not re-centred yet
    for track, vector in zip(tracks[101:125], vectors[101:125]):
        index.add(track, vector)
    np.testing.assert_allclose(index._mean[0], vectors[:125].mean(axis=0), atol=1e-5)  # 125 = 1.25 × 100


def test_vectors_and_index_of_one_folder(tmp_path):
    from musicrec_gui.core.recommend import VectorIndex

    library = Library(tmp_path / "lib.sqlite3")
    inside, beside = tmp_path / "music", tmp_path / "music-other"
    for folder in (inside, beside):
        folder.mkdir()
        for i in range(3):
            write(folder / f"{i}.flac", tone(1.0, freqs=(220.0 * (i + 1),)), 22050)
    from musicrec_gui.core.library import iter_identities

    for folder in (inside, beside):
        library.plan_scan(list(iter_identities(str(p) for p in sorted(folder.iterdir()))), encoder_key="e",
                          analysis_key="a", root=str(folder))
    rng = np.random.default_rng(0)
    for track in library.tracks():
        library.record_result(track.id, encoder_key="e", analysis_key="a", vector=rng.normal(size=4).astype(np.float32),
                              slice_vectors=np.zeros((1, 4), np.float32), offset_seconds=0.0,
                              title="t", artist="", album="", duration=1.0)
    ids, vectors = library.vectors(encoder_key="e", analysis_key="a", under=inside)
    paths = {t.id: t.path for t in library.tracks()}
    assert len(ids) == 3 and all(paths[int(i)].startswith(str(inside.resolve()) + "/") for i in ids)
    index = VectorIndex.from_library(library, encoder_key="e", analysis_key="a", under=str(inside))
    assert sorted(t.id for t in index.tracks) == sorted(int(i) for i in ids)
    assert len(VectorIndex.from_library(library, encoder_key="e", analysis_key="a")) == 6
    library.close()


@pytest.mark.parametrize("ext, rate, channels", [(".flac", 44100, 2), (".ogg", 48000, 1), (".mp3", 44100, 2),
                                                 (".m4a", 44100, 1)])
def test_streaming_decodes_what_load_audio_does_block_by_block(tmp_path, ext, rate, channels):
    import threading

    path = write(tmp_path / f"a{ext}", tone(12.0, sample_rate=rate, freqs=(440.0,), channels=channels), rate)
    whole = audio.load_audio(path, sample_rate=44100, offset=4.0)
    blocks = list(audio.stream_audio(path, sample_rate=44100, offset=4.0, channels=1))
    assert len(blocks) > 3 and all(b.dtype == np.float32 and b.ndim == 2 and b.shape[1] == 1 for b in blocks)
    mono = np.concatenate(blocks)[:, 0]
    assert mono.shape == whole.shape and np.allclose(mono, whole, atol=1e-5)
    # A device's two channels: a stereo file keeps its own, a mono one is copied to both.
    stereo = np.concatenate(list(audio.stream_audio(path, sample_rate=44100, offset=4.0, channels=2)))
    assert stereo.shape == (len(whole), 2)
    if channels == 1:
        assert np.array_equal(stereo[:, 0], stereo[:, 1])
    else:
        assert np.abs(stereo[:, 0]).max() > np.abs(stereo[:, 1]).max()  # audio_factory's right channel is quieter
    # Cancelling stops it between blocks; closing it releases the file.
    cancel = threading.Event()
    stream = audio.stream_audio(path, sample_rate=44100, offset=1.0, cancel=cancel)
    next(stream)
    cancel.set()
    with pytest.raises(audio.DecodeCancelled):
        for _ in stream:
            pass
    stream = audio.stream_audio(path, sample_rate=44100)
    next(stream)
    stream.close()


def test_an_index_refuses_vectors_that_are_not_finite():
    from musicrec_gui.core.recommend import VectorIndex

    tracks = [Track(i, f"/m/{i}.ogg", 1, 1, f"song {i}", "", "", 1.0, "done", "") for i in range(12)]
    index = VectorIndex(tracks[:9], np.random.default_rng(0).normal(size=(9, 4)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add(tracks[9], np.array([np.nan, 1.0, 1.0, 1.0]))
    index.add(tracks[9], np.ones(4))  # the index is unharmed and still grows
    assert len(index) == 10 and np.isfinite(index.unit).all()
