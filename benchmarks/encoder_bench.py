"""Per-patch inference time of the bundled musicnn encoder in each runtime form, in one run.

    python benchmarks/encoder_bench.py [--repeats 5] [--calls 3] [--songs 4]

Forms, all on the same real patches (spread analysis of corpus songs, as the scan makes them):

- ``keras eager``: ``model(x, training=False)`` called eagerly;
- ``tf.function (app)``: ``Encoder.embed_slices``, the app's path (one fixed graph of
  ``BATCH_SIZE`` (8) patches: one song in spread analysis);
- ``always padded to 16``: the app's path before (a call of 8 patches, one song in spread
  analysis, was padded to 16: half the work was padding);
- ``tf.function``: the same graph traced at each batch size (no padding);
- ``XLA``: ``tf.function(jit_compile=True)`` at each batch size;
- ``LiteRT float32 / float16 / dynamic-range int8``: converted at benchmark time with
  ``tf.lite.TFLiteConverter`` into a temporary folder, run with
  ``ai_edge_litert.interpreter.Interpreter(num_threads=2)`` (resized to each batch).

Each repeat times every form at every batch in turn (interleaved: the machine is shared and
noisy); reported is the median over repeats of ms per patch, and each form's largest absolute
difference from float32 Keras on the real patches (embedding and tag outputs).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.config import corpus_dir  # noqa: E402 - the one corpus setting

DEFAULT_CORPUS = corpus_dir()
BATCHES = (8, 16, 32)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3, help="calls per form, batch and repeat")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--encoder", type=Path, default=None, help="default: the bundled encoder")
    parser.add_argument("--no-eager", action="store_true", help="skip Keras eager (slow)")
    return parser.parse_args(argv)


def real_patches(corpus: Path, config, n: int):
    """``n`` spread-analysis patches (8 per song) of corpus songs, sorted by path, 1 to 5 min long."""
    import numpy as np

    from musicrec_gui.core.audio import load_song_windows
    from musicrec_gui.core.features import window_slices

    rows = list(csv.DictReader(open(corpus / "manifest.tsv", newline=""), delimiter="\t"))
    rows = sorted((r for r in rows if 60 <= float(r["seconds"]) <= 300), key=lambda r: r["path"])
    out = []
    for r in rows[:: max(1, len(rows) // 8)]:
        windows, _ = load_song_windows(str(corpus / r["path"]), config=config, patches=8)
        out.append(window_slices(windows, config=config))
        if sum(len(x) for x in out) >= n:
            break
    return np.concatenate(out)[:n]


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from musicrec_gui.core.encoder import Encoder, bundled_encoder_path, import_keras

    keras = import_keras()
    import tensorflow as tf

    encoder = Encoder(args.encoder or bundled_encoder_path())
    model = encoder.model
    cfg = encoder.features
    patches = real_patches(args.corpus, cfg, max(BATCHES))
    shape = patches.shape[1:]
    print(f"{len(patches)} real patches of shape {shape}; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{os.cpu_count()} cores; TF threads intra {tf.config.threading.get_intra_op_parallelism_threads()} "
          f"inter {tf.config.threading.get_inter_op_parallelism_threads()} (0 = default)", file=sys.stderr)

    def as_list(out):
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    forms: dict[str, dict[int, object]] = {}
    if not args.no_eager:
        forms["Keras eager"] = {b: (lambda x: model(x, training=False)) for b in BATCHES}
    forms["tf.function, app path (Encoder.embed_slices)"] = {
        b: (lambda x: encoder.embed_slices_with_tags(x)) for b in BATCHES}
    padded_call = tf.function(lambda x: model(x, training=False),
                              input_signature=[tf.TensorSpec((16, *shape), tf.float32)])

    def padded(x):  # the app before: every call padded to 16 patches
        outs = []
        for start in range(0, len(x), 16):
            part = x[start : start + 16]
            batch = np.zeros((16, *part.shape[1:]), np.float32)
            batch[: len(part)] = part
            outs.append([np.asarray(o)[: len(part)] for o in as_list(padded_call(batch))])
        return [np.concatenate(o) for o in zip(*outs)]

    forms["tf.function, always padded to 16 (the app before)"] = {b: padded for b in BATCHES}
    traced, xla = {}, {}
    for b in BATCHES:
        spec = tf.TensorSpec((b, *shape), tf.float32)
        traced[b] = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        xla[b] = tf.function(lambda x: model(x, training=False), input_signature=[spec], jit_compile=True)
    forms["tf.function at the batch size"] = traced
    forms["XLA (jit_compile=True)"] = xla

    litert_error = ""
    tmp = tempfile.TemporaryDirectory(prefix="musicrec-litert-")
    try:
        from ai_edge_litert.interpreter import Interpreter

        variants = {"float32": None, "float16": "float16", "dynamic-range int8": "dynamic"}
        for label, kind in variants.items():
            t0 = time.perf_counter()
            # (from_concrete_functions on a Keras 3 model gave a 30 kB file without its weights: NaN outputs.)
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            if kind is not None:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if kind == "float16":
                converter.target_spec.supported_types = [tf.float16]
            with contextlib.redirect_stdout(sys.stderr):  # the converter's export prints its signature
                blob = converter.convert()
            path = Path(tmp.name) / f"musicnn-{kind or 'float32'}.tflite"
            path.write_bytes(blob)
            print(f"LiteRT {label}: {len(blob) / 1e6:.1f} MB, converted in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
            per_batch = {}
            for b in BATCHES:
                interp = Interpreter(model_path=str(path), num_threads=2)
                inp = interp.get_input_details()[0]
                interp.resize_tensor_input(inp["index"], [b, *shape])
                interp.allocate_tensors()
                outs = interp.get_output_details()

                def run(x, interp=interp, inp=inp, outs=outs):
                    interp.set_tensor(inp["index"], x)
                    interp.invoke()
                    got = [interp.get_tensor(o["index"]) for o in outs]
                    # Outputs may come in any order: the embedding is the 200-wide one.
                    return sorted(got, key=lambda a: -a.shape[-1])

                per_batch[b] = run
            forms[f"LiteRT {label} (num_threads=2)"] = per_batch
    except Exception as err:  # noqa: BLE001
        litert_error = f"{type(err).__name__}: {err}"
        print(f"LiteRT unavailable: {litert_error}", file=sys.stderr)

    # Reference: float32 Keras, eager, whole batch of real patches.
    reference = as_list(model(patches, training=False))
    diffs = {}
    for name, per_batch in forms.items():
        b = max(BATCHES)
        got = as_list(per_batch[b](patches[:b]))
        diffs[name] = [float(np.max(np.abs(g - r))) for g, r in zip(got, reference)]
        for bb in BATCHES:  # warm-up: traces, XLA compiles, interpreters' first run
            per_batch[bb](patches[:bb])

    times: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeats):
        for name, per_batch in forms.items():
            for b in BATCHES:
                x = np.ascontiguousarray(patches[:b])
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    as_list(per_batch[b](x))
                times.setdefault((name, b), []).append(1000 * (time.perf_counter() - t0) / (args.calls * b))
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    tmp.cleanup()

    print(f"\n## musicnn inference per patch ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})\n")
    print(f"Median ms per patch over {args.repeats} interleaved repeats ({args.calls} calls each) [min–max]; "
          "max |difference| from float32 Keras on the same real patches (embedding / tags).\n")
    print("| form | " + " | ".join(f"batch {b}" for b in BATCHES) + " | max abs diff, embedding | tags |")
    print("|---|" + "---|" * (len(BATCHES) + 2))
    for name in forms:
        cells = []
        for b in BATCHES:
            t = times[(name, b)]
            cells.append(f"{statistics.median(t):.1f} [{min(t):.1f}–{max(t):.1f}]")
        d = diffs[name] + [float("nan")] * (2 - len(diffs[name]))
        print(f"| {name} | " + " | ".join(cells) + f" | {d[0]:.1e} | {d[1]:.1e} |")
    if litert_error:
        print(f"\nLiteRT could not be measured: {litert_error}")


if __name__ == "__main__":
    main()
