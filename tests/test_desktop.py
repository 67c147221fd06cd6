"""The desktop entry: installed for real into a temporary XDG_DATA_HOME, checked by the desktop's own validators."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from musicrec_gui import __version__
from musicrec_gui.integrations import desktop

ROOT = Path(__file__).resolve().parents[1]
APP = desktop.APP_ID


def _gui(env_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(env_home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "musicrec_gui.gui", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _paths(home: Path) -> dict[str, Path]:
    return {"desktop": home / "applications" / f"{APP}.desktop",
            "icon": home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP}.svg",
            "metainfo": home / "metainfo" / f"{APP}.metainfo.xml"}


def _entry(path: Path) -> dict[str, str]:
    lines = path.read_text("utf-8").splitlines()
    start = lines.index("[Desktop Entry]")
    return dict(line.split("=", 1) for line in lines[start + 1:] if "=" in line)


def test_install_validate_reinstall_and_uninstall(tmp_path):
    home = tmp_path / "share"
    result = _gui(home, "--install-desktop-entry")
    assert result.returncode == 0, result.stderr
    paths = _paths(home)
    assert all(p.is_file() for p in paths.values())
    assert "--uninstall-desktop-entry" in result.stdout

    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(paths["desktop"])], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    else:
        pytest.fail("desktop-file-validate is missing: apt-get install desktop-file-utils (scripts/bootstrap.sh test)")
    if shutil.which("appstreamcli"):
        check = subprocess.run(["appstreamcli", "validate", "--no-net", str(paths["metainfo"])], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    else:
        pytest.fail("appstreamcli is missing: apt-get install appstream (scripts/bootstrap.sh test)")

    entry = _entry(paths["desktop"])
    assert entry["Icon"] == APP and entry["Name"] == "musicrec" and entry["Type"] == "Application"
    # The menu's command is this installation's musicrec-gui, by absolute path, and it runs.
    argv = shlex.split(entry["Exec"].replace("\\\\", "\\"))
    assert os.path.isabs(argv[0]) and entry["TryExec"] == argv[0] and os.access(argv[0], os.X_OK)
    ran = subprocess.run(argv + ["--version"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and __version__ in ran.stdout
    # The icon is our SVG; the metainfo names the entry and this version.
    svg = ElementTree.parse(paths["icon"]).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox") == "0 0 128 128"
    component = ElementTree.parse(paths["metainfo"]).getroot()
    assert component.findtext("id") == APP and component.findtext("launchable") == f"{APP}.desktop"
    assert component.find("releases/release").get("version") == __version__

    # Installing again replaces musicrec's own files.
    assert _gui(home, "--install-desktop-entry").returncode == 0

    # Uninstalling removes them, and only them; folders stay.
    (home / "applications" / "someone-else.desktop").write_text("[Desktop Entry]\nType=Application\nName=x\nExec=x\n")
    removed = _gui(home, "--uninstall-desktop-entry")
    assert removed.returncode == 0, removed.stderr
    assert not any(p.exists() for p in paths.values())
    assert (home / "applications" / "someone-else.desktop").exists()
    assert "nothing to remove" in _gui(home, "--uninstall-desktop-entry").stdout


def test_a_file_musicrec_did_not_write_is_never_replaced_or_removed(tmp_path):
    home = tmp_path / "share"
    paths = _paths(home)
    paths["icon"].parent.mkdir(parents=True)
    paths["icon"].write_text("<svg>the user's own icon</svg>")
    before = paths["icon"].stat().st_mtime_ns
    result = _gui(home, "--install-desktop-entry")
    assert result.returncode == 1
    assert "nothing was written" in result.stderr and "musicrec did not write it" in result.stderr
    assert str(paths["icon"]) in result.stderr
    assert paths["icon"].read_text() == "<svg>the user's own icon</svg>" and paths["icon"].stat().st_mtime_ns == before
    assert not paths["desktop"].exists() and not paths["metainfo"].exists()  # all or nothing

    # A link at one of the paths is refused too, even one to musicrec's own file.
    paths["icon"].unlink()
    assert _gui(home, "--install-desktop-entry").returncode == 0
    own = paths["metainfo"].read_bytes()
    elsewhere = tmp_path / "elsewhere.xml"
    elsewhere.write_bytes(own)
    paths["metainfo"].unlink()
    paths["metainfo"].symlink_to(elsewhere)
    refused = _gui(home, "--install-desktop-entry")
    assert refused.returncode == 1 and "symbolic link" in refused.stderr
    # Uninstalling leaves the link (and what it points to) as they are and says so.
    removal = _gui(home, "--uninstall-desktop-entry")
    assert removal.returncode == 0
    assert paths["metainfo"].is_symlink() and elsewhere.read_bytes() == own
    assert "left" in removal.stderr and "symbolic link" in removal.stderr
    assert not paths["desktop"].exists() and not paths["icon"].exists()


def test_exec_lines_quote_what_the_spec_reserves():
    assert desktop.exec_value(["/opt/music rec/bin/musicrec-gui"]) == '"/opt/music rec/bin/musicrec-gui"'
    assert desktop.exec_value(["/a/100%/$HOME/python", "-m", "musicrec_gui.gui"]) == \
        '"/a/100%%/\\\\$HOME/python" -m musicrec_gui.gui'
    with pytest.raises(desktop.DesktopEntryError, match="line break"):
        desktop.exec_value(["/a\nb"])
    assert desktop.launcher("/nowhere/python-script", executable="/no/such/python") == \
        ["/no/such/python", "-m", "musicrec_gui.gui"]


def test_the_window_shows_the_icon(qtbot, env, tiny_encoder_path, tmp_path):
    from PySide6.QtGui import QIcon

    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.window import MainWindow

    folder = tmp_path / "empty"
    folder.mkdir()
    window = MainWindow(env["library"], env["store"], encoder_path=tiny_encoder_path, folder=folder,
                        player=NullPlayer("test"))
    qtbot.addWidget(window)
    env["windows"].append(window)
    icon = window.windowIcon()
    assert not icon.isNull()
    image = icon.pixmap(64, 64).toImage()
    assert image.width() == 64
    # Drawn, not blank: the centre is opaque and the corners (outside the rounded square) transparent.
    assert image.pixelColor(32, 32).alpha() == 255 and image.pixelColor(0, 0).alpha() == 0
    assert not QIcon(str(desktop.icon_path())).isNull()
