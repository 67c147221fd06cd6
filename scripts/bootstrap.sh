#!/usr/bin/env bash
# Set up musicrec on a fresh Debian/Ubuntu machine: system libraries, then a virtualenv in .venv.
#   scripts/bootstrap.sh        the app
#   scripts/bootstrap.sh test   the app plus what the tests need (Xvfb, pytest, pytest-qt, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:-app}

# Qt's xcb/offscreen platforms, PortAudio for previews, venv for the Python environment.
packages=(python3-venv python3-pip libportaudio2 libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0
          libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
          libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0)
if [ "$want" = test ]; then
    packages+=(xvfb xauth xdotool x11-utils)
    # Where people already listen (tests/test_mpd.py, test_desktop.py, test_pipx.py): a real MPD, the
    # desktop's own validators of the .desktop file and the AppStream metainfo, and pipx.
    packages+=(mpd desktop-file-utils appstream pipx)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "Installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want" = test ]; then
    # cluster: Ray, for tests/test_cluster.py's real two-node cluster (musicrec scan --ray);
    # mpd, beets: tests/test_mpd.py and tests/test_beets.py
    .venv/bin/python -m pip install -q -e '.[test,cluster,mpd,beets]'
    # The musicnn wheel (29 MB, ISC licence) holds the TF1 checkpoint that tests/test_musicnn.py
    # compares resources/encoder/musicnn.keras against. Downloaded once, never installed.
    wheel=.cache/musicnn/musicnn-0.1.0-py3-none-any.whl
    if [ ! -f "$wheel" ]; then
        echo "Downloading the musicnn 0.1.0 wheel into .cache/musicnn for the port's numeric test"
        .venv/bin/python -m pip download -q --no-deps --only-binary=:all: musicnn==0.1.0 -d .cache/musicnn
    fi
else
    .venv/bin/python -m pip install -q -e .
fi
echo "musicrec is installed in .venv"
