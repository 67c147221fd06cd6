"""Fast tests of training/: FMA-shaped fixture, splits, slice/teacher alignment, export round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.config import corpus_dir

SR = 22050
CORPUS = corpus_dir()


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_fma_fixture(root: Path) -> list[dict]:
    """fma_metadata/tracks.csv in FMA's exact 3-row-header layout + fma_small/NNN/NNNNNN.(mp3 name) audio."""
    import soundfile

    rows = []
    genres = ["Rock", "Electronic", "Folk"]
    splits = ["training", "training", "training", "validation", "test"]
    tid = 2
    for a, artist in enumerate(range(1, 9)):
        for k in range(2):
            rows.append({
                "track_id": tid, "artist_id": artist, "split": splits[a % len(splits)],
                "subset": "small" if tid % 7 else "medium", "genre_top": genres[a % 3], "duration": 4,
            })
            tid += 1
    rows.append({"track_id": tid, "artist_id": 99, "split": "training", "subset": "small", "genre_top": "", "duration": 4})
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    header_top = ["", "album", "artist", "artist", "set", "set", "track", "track", "track"]
    header_sub = ["", "title", "id", "name", "split", "subset", "duration", "genre_top", "title"]
    with open(meta / "tracks.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(header_top)
        w.writerow(header_sub)
        w.writerow(["track_id"] + [""] * (len(header_top) - 1))
        for r in rows:
            w.writerow([r["track_id"], "An Album, with comma", r["artist_id"], f"Artist {r['artist_id']}", r["split"],
                        r["subset"], r["duration"], r["genre_top"], "Title"])
            # real MP3 (libsndfile >= 1.1 writes it), at FMA's fma_small/NNN/NNNNNN.mp3 path
            path = data.fma_audio_path(root / "fma_small", r["track_id"])
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, _tone(4, 220 + 40 * r["artist_id"]), SR, format="MP3")
    return rows


@pytest.fixture(scope="module")
def fma_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fma")
    _write_fma_fixture(root)
    return root


def test_fma_tracks_csv_is_parsed_into_official_splits(fma_root):
    tracks = data.fma_tracks(fma_root / "fma_metadata" / "tracks.csv", fma_root / "fma_small", subset="small")
    assert tracks, "no FMA tracks parsed"
    assert all(t.label in {"Rock", "Electronic", "Folk"} for t in tracks)  # no genre_top → dropped
    assert all(Path(t.path).name == f"{int(Path(t.path).stem):06d}.mp3" for t in tracks)
    assert all(Path(t.path).parent.name == Path(t.path).stem[:3] for t in tracks)
    medium = data.fma_tracks(fma_root / "fma_metadata" / "tracks.csv", fma_root / "fma_small", subset="medium")
    assert len(medium) > len(tracks)  # medium ⊃ small
    splits = data.split_tracks(tracks)
    data.assert_disjoint(splits)
    assert all(splits[s] for s in data.SPLITS)
    for s, ts in splits.items():
        assert all(t.split == s for t in ts)  # official split kept
    artists = {s: {t.group for t in ts} for s, ts in splits.items()}
    assert not (artists["train"] & artists["test"]) and not (artists["train"] & artists["validation"])


def test_fma_cache_uses_app_front_end(fma_root, tmp_path):
    from musicrec_gui.core.audio import load_audio
    from musicrec_gui.core.features import song_slices

    tracks = data.fma_tracks(fma_root / "fma_metadata" / "tracks.csv", fma_root / "fma_small")[:3]
    cache = data.build_cache(tracks, name="fma-test", cache_dir=tmp_path, workers=1, verbose=False)
    assert cache.spec.shape[0] == 3 and isinstance(cache.spec, np.memmap)
    expected = song_slices(load_audio(tracks[0].path))
    got = cache.app_slices(0)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float16 cache
    again = data.build_cache(tracks, name="fma-test", cache_dir=tmp_path, workers=1, verbose=False)
    assert again.directory == cache.directory


def test_cache_stores_window_offsets_and_old_caches_still_load(tmp_path):
    import soundfile

    from musicrec_gui.core.audio import load_audio

    (tmp_path / "music" / "x").mkdir(parents=True)
    for i, seconds in enumerate((40, 20)):  # one track long enough for three windows, one shorter than a window
        soundfile.write(tmp_path / "music" / "x" / f"t{i}.wav", _tone(seconds, 300 + 100 * i), SR)
    tracks = data.folder_tracks(tmp_path / "music")
    cache = data.build_cache(tracks, name="w3", n_windows=3, cache_dir=tmp_path / "cache", workers=1, verbose=False)
    expected = data.window_offsets(40.0, 3) + data.window_offsets(20.0, 3)
    assert len(expected) == 4 and expected[0] == 5.0  # window 0: the centred excerpt
    np.testing.assert_allclose(cache.offsets, expected, atol=1e-3)
    assert (cache.directory / "offsets.npy").is_file()
    w = int(cache.windows_of(0)[-1])  # the teacher decodes the same excerpt again from the stored offset
    again = load_audio(tracks[0].path, sample_rate=16000, offset=float(cache.offsets[w]), duration=data.EXCERPT_SECONDS)
    np.testing.assert_array_equal(cache.window_audio(w, 16000), again)
    (cache.directory / "offsets.npy").unlink()  # a cache written before the offsets were stored
    index = json.loads((cache.directory / "index.json").read_text())
    del index["n_windows"], index["excerpt_seconds"]
    (cache.directory / "index.json").write_text(json.dumps(index))
    old = data.load_cache(cache.directory)
    np.testing.assert_allclose(old.offsets, expected)
    assert (cache.directory / "offsets.npy").is_file()  # upgraded in place, once


def test_split_is_deterministic_stratified_and_keeps_near_duplicates_together():
    tracks = []
    for label in ("a", "b", "c"):
        for i in range(12):
            for variant in ("", "_loop", "_fast"):
                path = f"/x/{label}/piece{i:02d}{variant}.ogg"
                tracks.append(data.LabelledTrack(path=path, label=label, group=f"{label}/{data.near_duplicate_key(path)}"))
    s1, s2 = data.split_tracks(tracks, seed=7), data.split_tracks(tracks, seed=7)
    assert {k: [t.path for t in v] for k, v in s1.items()} == {k: [t.path for t in v] for k, v in s2.items()}
    data.assert_disjoint(s1)
    for name in data.SPLITS:
        assert {t.label for t in s1[name]} == {"a", "b", "c"}
        groups = {t.group for t in s1[name]}
        assert sum(1 for t in tracks if t.group in groups) == len(s1[name])  # whole groups only
    assert data.near_duplicate_key("a/Theme_Loop2.ogg") == data.near_duplicate_key("b/theme.ogg")
    assert data.near_duplicate_key("x/ingame_09.ogg") != data.near_duplicate_key("x/ingame_14.ogg")


def test_folder_per_label(tmp_path):
    import soundfile

    for label in ("jazz", "metal"):
        (tmp_path / label).mkdir()
        for i in range(3):
            soundfile.write(tmp_path / label / f"{label}.{i:05d}.wav", _tone(1, 300), SR)
    soundfile.write(tmp_path / "stray.wav", _tone(1, 300), SR)
    tracks = data.folder_tracks(tmp_path)
    assert sorted({t.label for t in tracks}) == ["jazz", "metal"] and len(tracks) == 6
    assert len(data.unlabelled_tracks(tmp_path)) == 7


def test_teacher_windows_align_with_slices():
    from musicrec_gui.core.config import FeatureConfig
    from training import teacher

    cfg = FeatureConfig()
    for start in (0, 128, 640, 1152):
        t_ours = start * cfg.hop_length / cfg.sample_rate
        t_teacher = teacher.teacher_frame_for_slice(start, cfg) * teacher.HOP / teacher.SR
        assert abs(t_ours - t_teacher) <= 0.5 * teacher.HOP / teacher.SR + 1e-9
    # a teacher patch (187 frames at 16 kHz/hop 256) covers our slice (128 frames at 22 050 Hz/hop 512) to within 1 %
    assert abs(teacher.PATCH * teacher.HOP / teacher.SR - cfg.slice_seconds) / cfg.slice_seconds < 0.01
    starts = teacher.grid_starts(1292, cfg)
    assert starts[0] == 0 and starts[-1] + cfg.slice_frames <= 1292


def test_retrieval_scores():
    from training.evaluate import retrieval_scores

    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=float)
    s = retrieval_scores(v, ["a", "a", "b", "b"])
    assert s["p@1"] == 1.0 and s["map"] == 1.0
    s = retrieval_scores(v, ["a", "b", "a", "b"])
    assert s["p@1"] == 0.0


def _tiny_model():
    import keras

    inputs = keras.Input(shape=(128, 128, 1))
    x = keras.layers.AveragePooling2D(16)(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32)(x)
    out = keras.layers.UnitNormalization()(x)
    return keras.Model(inputs, out)


def test_build_model_shapes_and_safe_reload(tmp_path):
    import keras

    from training.models import build_model

    train_model, emb = build_model("compact", n_labels=5, embedding_size=32)
    assert emb.input_shape[1:] == (128, 128, 1) and emb.output_shape[-1] == 32
    assert {"label", "embedding"} <= set(train_model.output)
    emb.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    x = np.random.default_rng(0).uniform(size=(2, 128, 128, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(emb(x)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(emb(x)), axis=1), 1.0, atol=1e-4)


def _tiny_run(run, *, features=None, args=None):
    from training.config import save_run_config

    run.mkdir()
    _tiny_model().save(run / "embedding.keras")
    args = args or {"architecture": "compact", "objective": "contrastive", "seed": 1}
    (run / "run.json").write_text(json.dumps({
        "run_name": "tiny", "args": args,
        "labels": ["a", "b"], "minutes": 0.1, "epochs_run": 1, "dataset": "corpus",
        "n_tracks": {"train": 1, "validation": 1, "test": 1}, "scores": {"encoder": {"album": {"p@1": 0.5}}},
    }))
    if features is not None:
        save_run_config(run, args=args, features=features, labels=["a", "b"], dataset="corpus", windows_per_track=1)
    return run


def test_export_round_trip_and_tamper_refused(tmp_path):
    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import Encoder, EncoderError
    from training.export import export_run

    run = _tiny_run(tmp_path / "run", features=FeatureConfig())
    out = tmp_path / "enc" / "musicrec.keras"
    config = export_run(run, out, version="0.0.1")
    enc = Encoder(out)
    assert enc.config.weights_sha256 == config.weights_sha256 and enc.config.labels == ("a", "b")
    assert enc.config.training["minutes"] == 0.1 and enc.config.scores["test_split"]["encoder"]["album"]["p@1"] == 0.5
    v = enc.embed_song(np.random.default_rng(1).uniform(size=(3, 128, 128, 1)).astype(np.float32))
    assert v.shape == (32,)
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    out.write_bytes(bytes(blob))
    with pytest.raises(EncoderError):
        Encoder(out)


def test_export_uses_the_runs_features_and_writes_no_machine_paths(tmp_path):
    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import Encoder
    from training.config import REPO_ROOT
    from training.export import export_run

    trained_on = FeatureConfig(fmax=11025.0, top_db=60.0)  # not the default: export must not write FeatureConfig()
    args = {"architecture": "compact", "objective": "contrastive", "seed": 1, "label_weight": 0.0, "teacher": True,
            "data_root": str(tmp_path / "corpus"), "run_name": "tiny"}
    run = _tiny_run(tmp_path / "run", features=trained_on, args=args)
    out = tmp_path / "enc" / "musicrec.keras"
    export_run(run, out, version="0.0.1")
    enc = Encoder(out)
    assert enc.config.features == trained_on and enc.features.fingerprint == trained_on.fingerprint
    text = out.with_suffix(".json").read_text()
    assert str(tmp_path) not in text and str(REPO_ROOT) not in text and "/work/" not in text
    command = enc.config.training["command"]
    assert "--data-root DATA_ROOT" in command and "--label-weight 0.0" in command
    assert "--teacher" in command and "True" not in command and "--run-name" not in command

    old = _tiny_run(tmp_path / "old")  # a run from before config.json: no features recorded
    with pytest.raises(KeyError, match="assume-default-features"):
        export_run(old, tmp_path / "old-enc" / "m.keras", version="0.0.1")
    config = export_run(old, tmp_path / "old-enc" / "m.keras", version="0.0.1", assume_default_features=True)
    assert config.features == FeatureConfig()


@pytest.mark.skipif(not (CORPUS / "manifest.tsv").is_file(), reason=f"corpus not fetched ({CORPUS})")
def test_corpus_split_is_disjoint_and_covers_every_package():
    tracks = data.corpus_tracks(CORPUS)
    splits = data.split_tracks(tracks)
    data.assert_disjoint(splits)
    assert sum(len(v) for v in splits.values()) == len(tracks)
    assert {t.label for t in splits["train"]} == {t.label for t in tracks}


BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "encoder" / "compact.keras"


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled encoder yet")
def test_compact_encoder_v020_loads_and_is_documented():
    from musicrec_gui.core.encoder import Encoder

    enc = Encoder(BUNDLED)
    assert enc.config.embedding_size == 32 and enc.config.training.get("minutes")
    assert BUNDLED.stat().st_size < 25e6
    v = enc.embed_slices(np.zeros((2, 128, 128, 1), dtype=np.float32))
    assert v.shape == (2, 32) and np.all(np.isfinite(v))


def test_demo_artist_tag_is_cleaned_from_copyright_lines():
    from training.make_demo import artist_names, clean_artist

    assert clean_artist("Nikola Whallon <6.saturn.6@gmail.com>", "naev") == "Nikola Whallon"
    assert clean_artist("Marek Moeckel <wansti@gmx.de>", "SuperTux Devel Team") == "Marek Moeckel"
    assert clean_artist("2002-2019 by the Widelands Development Team", "widelands") == "Widelands Development Team"
    assert clean_artist("Copyright (C) 2003-2010, John Doe <j@d.org>; Jane Roe; Max Mustermann", "T") == "John Doe, Jane Roe"
    assert clean_artist("<someone@example.org>; 2019", "Upstream Team") == "Upstream Team"
    ufo = "OpenArena; Al Riddoch; Simon Green (Psymong); OpenArena; Alex Parker; Paul Bee"
    assert clean_artist(ufo, "The UFO:AI Team", composer="Alex") == "Alex Parker"
    assert clean_artist(ufo, "The UFO:AI Team", composer="Crystan") == "Crystan"
    assert clean_artist(ufo, "The UFO:AI Team") == "OpenArena, Al Riddoch"
    assert artist_names('"Marine" Baklund\nGren\nGren alchemist_0@sky.com') == ['"Marine" Baklund', "Gren"]


def test_evaluation_song_vectors_are_the_apps(fma_root, tmp_path):
    """evaluate.embed_tracks: a bare run model and the exported encoder (the app's loader) give the app's song vector."""
    from musicrec_gui.core.audio import load_audio
    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import Encoder
    from musicrec_gui.core.features import song_slices
    from training.evaluate import embed_tracks
    from training.export import export_run

    tracks = data.fma_tracks(fma_root / "fma_metadata" / "tracks.csv", fma_root / "fma_small")[:2]
    cache = data.build_cache(tracks, name="fma-eval", cache_dir=tmp_path, workers=1, verbose=False)
    run = _tiny_run(tmp_path / "run", features=FeatureConfig())
    out = tmp_path / "enc" / "m.keras"
    export_run(run, out, version="0.0.1")
    encoder = Encoder(out)
    import keras

    bare = keras.saving.load_model(run / "embedding.keras", safe_mode=True, compile=False)
    got_bare = embed_tracks(bare, cache, [0, 1])
    got_app = embed_tracks(encoder, cache, [0, 1])
    assert got_bare.label_probs is None and got_bare.slice_preds is None
    app = np.stack([encoder.embed_song(song_slices(load_audio(t.path))) for t in tracks])
    np.testing.assert_allclose(got_app.vectors, app, atol=2e-3)  # float16 cache
    np.testing.assert_allclose(got_bare.vectors, got_app.vectors, atol=1e-5)


def test_distillation_augments_on_mel_power_and_keeps_the_teachers_tag_head():
    import numpy as np

    from musicrec_gui.core.encoder import bundled_encoder_path, import_keras
    from training.distill import augment, build_student, macs

    rng = np.random.default_rng(0)
    # Patches as the front end makes them: log10(1 + 10^4 · mel power) of two different "songs".
    power = np.concatenate([np.full((3, 96, 187), 1e-3), np.full((3, 96, 187), 1e-1)]) * rng.uniform(0.5, 2, (6, 96, 187))
    x = np.log10(1 + 1e4 * power).astype(np.float16)
    song = np.array([0, 0, 0, 1, 1, 1])
    out = augment(x, song, rng)
    assert out.shape == x.shape and out.dtype == np.float16 and np.isfinite(out.astype(np.float32)).all()
    assert (out >= 0).all() and not np.allclose(out, x, atol=0.05)  # gain/EQ/shift changed every patch
    # Gains of -12 to +6 dB and a ±6 dB EQ move the log-compressed level by a bounded amount.
    assert np.abs(out.astype(np.float32).mean(axis=(1, 2)) - x.astype(np.float32).mean(axis=(1, 2))).max() < 2.0

    keras = import_keras()
    teacher = keras.saving.load_model(bundled_encoder_path(), safe_mode=True, compile=False)
    student = build_student(teacher=teacher)
    embedding, tags = student(np.zeros((2, 96, 187, 1), np.float32))
    assert embedding.shape == (2, 200) and tags.shape == (2, 50)
    np.testing.assert_array_equal(student.get_layer("tags").get_weights()[0], teacher.get_layer("tags").get_weights()[0])
    assert not student.get_layer("tags").trainable
    assert macs(student) < macs(teacher) / 10  # what makes it worth having
