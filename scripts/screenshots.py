"""Take docs/screenshots/main.png: the real app under Xvfb, on the bundled demo library.

    python scripts/screenshots.py [--out docs/screenshots/main.png] [--size 1400x900] [--tab songs|map]

Starts ``musicrec-gui --screenshot`` with a fresh library and settings file (so it
is a first run: the demo library is scanned), inside ``xvfb-run`` when no
display is available. The app waits until the scan has finished and a song is
selected with its spectrogram and recommendations, grabs its window and quits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "main.png")
    parser.add_argument("--size", default="1400x900")
    parser.add_argument("--tab", choices=("songs", "map"), default="songs",
                        help="what the left column shows: the song list or the library map")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="musicrec-shot-") as tmp:
        if args.tab == "map":  # the tab the window opens on is a remembered preference
            Path(tmp, "settings.ini").write_text("[General]\nleft_tab=1\n")
        command = [sys.executable, "-m", "musicrec_gui.gui", "--library", f"{tmp}/library.sqlite3",
                   "--settings", f"{tmp}/settings.ini", "--screenshot", str(args.out.resolve())]
        # A HOME whose ALSA default is the null device: the player opens a real PortAudio stream
        # (as on a machine with a sound card) and the window looks as a user's does.
        Path(tmp, ".asoundrc").write_text("pcm.!default { type null }\n")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HOME=tmp)
        env.pop("QT_QPA_PLATFORM", None)
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            command = ["xvfb-run", "-a", "-s", f"-screen 0 {args.size}x24"] + command
        elif not os.environ.get("DISPLAY"):
            env["QT_QPA_PLATFORM"] = "offscreen"
        result = subprocess.run(command, cwd=ROOT, env=env, timeout=600)
    if result.returncode != 0 or not args.out.exists():
        print(f"screenshot failed (exit {result.returncode})", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
