"""``pipx install --force <this repository>``, for real, with its dependencies, into a temporary PIPX_HOME
and PIPX_BIN_DIR, as a user on a fresh machine would; then the installed commands are run.

Measured on the 2-core development machine: 56 s and 2.3 GB (TensorFlow, Qt), the wheels coming
from pip's cache, as they do in CI right after ``scripts/bootstrap.sh test`` installed the same
ones. The 2.3 GB are deleted at the end. (pipx cannot install with ``--no-deps``: it reads every
dependency's metadata to find the commands to expose.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("pipx") is None,
                                 reason="needs pipx (Debian package pipx; scripts/bootstrap.sh test installs it)")]


def _source_copy(target: Path) -> Path:
    """The repository's tracked files (what a fresh clone holds): the build writes only there."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode == 0:
        for name in listed.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
    else:  # not a git checkout: everything but local environments and build output
        shutil.copytree(ROOT, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".venv", ".git", ".cache", "build", "dist", "*.egg-info",
                                                      "__pycache__", ".pytest_cache", ".hypothesis"))
    return target


def test_pipx_installs_the_app_its_commands_and_its_files(tmp_path):
    source = _source_copy(tmp_path / "src")
    home, bin_dir, data = tmp_path / "pipx", tmp_path / "bin", tmp_path / "share"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir), HOME=str(tmp_path / "home"),
               XDG_DATA_HOME=str(data), QT_QPA_PLATFORM="offscreen")
    try:
        _install_and_check(source, home, bin_dir, data, env, tmp_path)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # 2.3 GB


def _install_and_check(source: Path, home: Path, bin_dir: Path, data: Path, env: dict, tmp_path: Path):
    command = ["pipx", "install", "--force", "--python", sys.executable, str(source)]
    installed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (bin_dir / "musicrec").exists() and (bin_dir / "musicrec-gui").exists()

    venv = home / "venvs" / "musicrec"
    python = venv / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    packages = Path(where)

    # The wheel carries the package data and the beets plugin, in beets' namespace package.
    for name in ("musicrec_gui/resources/desktop/musicrec.svg", "musicrec_gui/resources/desktop/musicrec.desktop.in",
                 "musicrec_gui/resources/encoder/musicnn.keras", "musicrec_gui/resources/demo/vectors.npz",
                 "beetsplug/musicrec.py", "musicrec_gui/integrations/mpd_queue.py"):
        assert (packages / name).is_file(), name
    assert not (packages / "beetsplug" / "__init__.py").exists()  # it would hide beets' own plugins

    # The installed commands run from the installed files, not from this checkout.
    outside = {**env, "PYTHONPATH": ""}
    version = subprocess.run([str(bin_dir / "musicrec"), "--version"], env=outside, capture_output=True, text=True,
                             cwd=tmp_path)
    assert version.returncode == 0 and "musicrec 0.1.0" in version.stdout, version.stderr
    where_from = subprocess.run([str(python), "-c", "import musicrec_gui; print(musicrec_gui.__file__)"], env=outside,
                                capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert where_from.startswith(str(venv))
    # Its dependencies came with it: the GUI's and the encoder's stacks import.
    stacks = subprocess.run([str(python), "-c", "import musicrec_gui.gui.window, musicrec_gui.core.encoder, keras"],
                            env=outside, capture_output=True, text=True, cwd=tmp_path)
    assert stacks.returncode == 0, stacks.stderr
    scanned = subprocess.run([str(bin_dir / "musicrec"), "--library", str(tmp_path / "lib.sqlite3"), "info"],
                             env=outside, capture_output=True, text=True, cwd=tmp_path)
    assert scanned.returncode == 0 and "songs:    0" in scanned.stdout, scanned.stderr

    entry = subprocess.run([str(bin_dir / "musicrec-gui"), "--install-desktop-entry"], env=outside,
                           capture_output=True, text=True, cwd=tmp_path)
    assert entry.returncode == 0, entry.stderr
    desktop = (data / "applications" / "io.github.musicrec.musicrec.desktop").read_text()
    assert f"Exec={bin_dir / 'musicrec-gui'}\n" in desktop  # the command pipx put on the PATH
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "io.github.musicrec.musicrec.svg").is_file()
