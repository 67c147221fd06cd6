"""How long Play takes to make sound: decoding the whole preview first (the old way) vs streaming.

    python benchmarks/playback_bench.py [--seconds 600] [--repeats 5] [--busy 0]

Writes a long FLAC and Ogg Vorbis (44.1 kHz stereo) to a temporary folder and plays each
from its middle through real PortAudio into ALSA's null device (a HOME whose ``.asoundrc``
says so, as the tests do). For each it prints the time from asking to play to the first
frames handed to the device:

- old: the core's ``load_audio`` of up to 300 s from the start point at the device's rate,
  then an ``OutputStream`` started (what the player did before streaming);
- new: ``Player.play`` (a decode thread feeding a ring buffer; the stream starts once
  ``PRIME_SECONDS`` are in), until its state is ``playing`` and frames were delivered;
- seek: ``Player.seek`` while playing, until frames of the new point were delivered.

``--busy N`` runs N processes spinning the CPU meanwhile (as a scan does).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _write_long(path: Path, seconds: float, rate: int = 44100) -> Path:
    import numpy as np
    import soundfile

    from audio_factory import tone

    second = tone(1.0, sample_rate=rate, freqs=(220.0, 330.0), channels=2, noise=0.01)
    subtype = "VORBIS" if path.suffix == ".ogg" else "PCM_16"
    with soundfile.SoundFile(path, "w", rate, 2, format=path.suffix[1:].upper(), subtype=subtype) as handle:
        for i in range(int(seconds)):
            handle.write(second * np.float32(0.5 + 0.5 * ((i % 7) / 7)))
    return path


def old_way(sd, path: str, start: float, rate: int, channels: int) -> float:
    """load_audio of the preview, then a callback stream: seconds to the first callback with audio."""
    import numpy as np

    from musicrec_gui.core.audio import load_audio

    first = threading.Event()
    t0 = time.perf_counter()
    audio = load_audio(path, sample_rate=rate, offset=start, duration=300.0)
    pos = [0]

    def callback(outdata, frames, time_info, status):
        chunk = audio[pos[0]:pos[0] + frames]
        outdata[:len(chunk)] = chunk[:, None]
        outdata[len(chunk):] = 0
        pos[0] += len(chunk)
        first.set()

    stream = sd.OutputStream(samplerate=rate, channels=channels, dtype="float32", callback=callback)
    stream.start()
    first.wait(10)
    elapsed = time.perf_counter() - t0
    stream.abort()
    stream.close()
    del audio, np
    return elapsed


def new_way(app, path: str, start: float) -> tuple[float, float]:
    """Player.play until playing with frames delivered; then a seek until the new point plays."""
    from musicrec_gui.gui.player import PLAYING, make_player

    player = make_player()
    try:
        t0 = time.perf_counter()
        player.play(("bench", path), path, start)
        while not (player.state == PLAYING and player.frames_delivered > 0):
            app.processEvents()
            time.sleep(0.0005)
            if time.perf_counter() - t0 > 20:
                raise RuntimeError(f"did not start: {player.state}")
        started = time.perf_counter() - t0
        time.sleep(0.2)
        app.processEvents()
        target = start + 120.0
        t1 = time.perf_counter()
        player.seek(target)
        feed = player._feed
        while feed.read == 0:
            app.processEvents()
            time.sleep(0.0005)
        seeked = time.perf_counter() - t1
        return started, seeked
    finally:
        player.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the test songs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes meanwhile")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from audio_factory import portaudio_on_null_device

    portaudio_on_null_device()
    import sounddevice as sd
    from PySide6.QtCore import QCoreApplication

    from musicrec_gui.gui.player import make_player

    app = QCoreApplication.instance() or QCoreApplication([])
    probe = make_player()
    rate, channels = probe.sample_rate, probe.channels
    probe.close()
    print(f"device: {sd.query_devices(kind='output')['name']}, {rate} Hz, {channels} channels; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.busy} busy processes")
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    with tempfile.TemporaryDirectory(prefix="musicrec-playbench-") as tmp:
        songs = [_write_long(Path(tmp) / f"long{ext}", args.seconds) for ext in (".flac", ".ogg")]
        for p in spinners:
            p.start()
        try:
            print(f"{'song':<26}{'old (decode first)':>20}{'new (streaming)':>18}{'seek':>10}")
            for path in songs:
                start = args.seconds / 2 - 30.0  # where a preview of the song starts: its middle minute
                old, new, seek = [], [], []
                for _ in range(args.repeats):
                    old.append(old_way(sd, str(path), start, rate, channels))
                    started, seeked = new_way(app, str(path), start)
                    new.append(started)
                    seek.append(seeked)
                name = f"{path.suffix[1:].upper()} {args.seconds / 60:g} min"
                print(f"{name:<26}{1000 * statistics.median(old):>17.0f} ms{1000 * statistics.median(new):>15.0f} ms"
                      f"{1000 * statistics.median(seek):>7.0f} ms")
                print(f"{'  (best … worst)':<26}{1000 * min(old):>8.0f} … {1000 * max(old):>4.0f} ms"
                      f"{1000 * min(new):>6.0f} … {1000 * max(new):>4.0f} ms{1000 * max(seek):>7.0f} ms")
        finally:
            stop.set()
            for p in spinners:
                p.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
