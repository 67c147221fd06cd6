"""How tests/data/library-schema2.sqlite3 was written: with the schema-2 code of commit 8e11605
(`PYTHONPATH=. python tests/data/make_library_schema2.py tests/data/library-schema2.sqlite3`).
It only runs against that schema; kept to show what the fixture holds."""
import os, sys, sqlite3
import numpy as np
from musicrec_gui.core.library import Library, FileIdentity, SCHEMA_VERSION
assert SCHEMA_VERSION == 2
out = sys.argv[1]
for s in ("", "-wal", "-shm"):
    if os.path.exists(out + s): os.unlink(out + s)
rng = np.random.default_rng(2)
files = [FileIdentity(f"/music/{n}", 1000 + i, 1_700_000_000_000_000_000 + i)
         for i, n in enumerate(["one.ogg", "two.flac", "bad.mp3", "slow.wav", "gone/three.ogg", "new.mp3", "empty.wav"])]
with Library(out) as lib:
    lib.set_meta("last_folder", "/music")
    plan = lib.plan_scan(files, encoder_key="old-enc-1-aaaaaaaaaaaa-bbbbbbbb", analysis_key="excerpt30")
    ids = {os.path.basename(t.path): t.id for t in plan.todo}
    for name in ("one.ogg", "two.flac", "three.ogg"):
        v = rng.standard_normal((3, 32)).astype(np.float32)
        lib.record_result(ids[name], encoder_key="old-enc-1-aaaaaaaaaaaa-bbbbbbbb", analysis_key="excerpt30",
                          vector=v.mean(0), slice_vectors=v, offset_seconds=1.5, title=name.split(".")[0].title(),
                          artist="Artist", album="Album", duration=180.0)
    plan = lib.plan_scan(files, encoder_key="new-enc-2-cccccccccccc-dddddddd", analysis_key="spread8")
    for name in ("one.ogg", "two.flac"):
        v = rng.standard_normal((8, 16)).astype(np.float32)
        lib.record_result(ids[name], encoder_key="new-enc-2-cccccccccccc-dddddddd", analysis_key="spread8",
                          vector=v.mean(0), slice_vectors=v, offset_seconds=0.0, title=name.split(".")[0].title(),
                          artist="Artist", album="Album", duration=180.0,
                          tag_probabilities=np.array([0.1, 0.9, 0.5], np.float32))
    lib.record_failure(ids["bad.mp3"], "not a readable audio file (Invalid data found when processing input)",
                       encoder_key="new-enc-2-cccccccccccc-dddddddd", analysis_key="spread8", kind="not_audio")
    lib.record_failure(ids["bad.mp3"], "not a readable audio file (Invalid data found when processing input)",
                       encoder_key="old-enc-1-aaaaaaaaaaaa-bbbbbbbb", analysis_key="excerpt30", kind="not_audio")
    lib.record_failure(ids["slow.wav"], "decoding ran past its time limit; the file is probably damaged",
                       encoder_key="new-enc-2-cccccccccccc-dddddddd", analysis_key="spread8", kind="timeout")
    lib.record_failure(ids["empty.wav"], "the file is empty (0 bytes)",
                       encoder_key="new-enc-2-cccccccccccc-dddddddd", analysis_key="spread8", kind="empty")
    # gone/three.ogg is not found by a later scan whose folder /music/gone is absent: kept as missing
    lib.plan_scan([f for f in files if "gone" not in f.path], encoder_key="new-enc-2-cccccccccccc-dddddddd",
                  analysis_key="spread8", root="/music")
    print(lib.stats())
conn = sqlite3.connect(out)
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(conn.execute("PRAGMA journal_mode").fetchone(), conn.execute("PRAGMA user_version").fetchone())
conn.close()
for s in ("-wal", "-shm"):
    if os.path.exists(out + s): os.unlink(out + s)
