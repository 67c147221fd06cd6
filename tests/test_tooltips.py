"""Every control of the main window says what it does: a tooltip sentence, its shortcut, a status tip in menus."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAction, QKeySequence  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton, QAbstractSpinBox, QComboBox, QHeaderView, QLineEdit, QMenu, QSlider, QTabWidget, QWidget,
)

from musicrec_gui.core.library import Library  # noqa: E402
from musicrec_gui.gui.player import NullPlayer  # noqa: E402
from musicrec_gui.gui.preferences import open_store  # noqa: E402
from musicrec_gui.gui.window import MainWindow  # noqa: E402

CONTROLS = (QAbstractButton, QComboBox, QAbstractSpinBox, QSlider, QLineEdit)


@pytest.fixture()
def window(qtbot, tmp_path, tiny_encoder_path, good_library_dir):
    folder = tmp_path / "music"
    shutil.copytree(good_library_dir, folder)
    library = Library(tmp_path / "library.sqlite3")
    made = MainWindow(library, open_store(str(tmp_path / "settings.ini")), encoder_path=tiny_encoder_path,
                      folder=folder, player=NullPlayer("no audio in this test"))
    qtbot.addWidget(made)
    made.show()
    qtbot.waitUntil(lambda: not made.engine.scanning, timeout=60_000)
    made.select_track(made.songs.model.tracks()[0].id)
    # The recommendation rows (with their own buttons) are part of what a user sees.
    qtbot.waitUntil(lambda: len(made.recommendations.rows) == 2, timeout=10_000)
    yield made
    made.close()
    made.engine.shutdown()
    library.close()


def is_sentence(text: str) -> bool:
    """A readable sentence: a few words, not just the control's own label."""
    return len(text.split()) >= 3


def _plain(text: str) -> str:
    return text.replace("&", "").rstrip("…").strip()


def visible_controls(window: QWidget) -> list[QWidget]:
    found = []
    for widget in window.findChildren(QWidget):
        if not isinstance(widget, CONTROLS) or not widget.isVisible():
            continue
        if isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
            continue  # the line edit inside a spin box or combo box: the box itself has the tooltip
        if widget.objectName() == "qt_toolbar_ext_button":
            continue
        found.append(widget)
    return found


def describe(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") else ""
    return f"{type(widget).__name__} {widget.objectName()!r} {text!r} in {type(widget.parent()).__name__}"


def test_every_visible_control_has_a_tooltip_sentence(window):
    controls = visible_controls(window)
    assert len(controls) >= 12  # toolbar buttons, the mode box, the filter, the panels' controls
    missing = [describe(w) for w in controls if not is_sentence(w.toolTip())]
    assert not missing, "controls without a readable tooltip:\n" + "\n".join(missing)


def menu_actions(menu: QMenu) -> list[QAction]:
    actions = []
    for action in menu.actions():
        if action.menu() is not None:
            actions += menu_actions(action.menu())
        elif not action.isSeparator():
            actions.append(action)
    return actions


def test_every_menu_and_toolbar_action_has_a_tooltip_status_tip_and_shortcut_hint(window):
    actions = [a for menu_action in window.menuBar().actions() for a in menu_actions(menu_action.menu())]
    assert len(actions) >= 12
    track = window.songs.model.tracks()[0]
    context = menu_actions(window.song_actions.menu_for(track, window.songs))
    assert [a.text() for a in context][:2] == ["Play", "Find similar songs"]
    problems = []
    for action in actions + context:
        name = _plain(action.text())
        if not is_sentence(action.statusTip()):
            problems.append(f"{name}: no status tip sentence")
        if not is_sentence(action.toolTip()) or _plain(action.toolTip()) == name:
            problems.append(f"{name}: no tooltip sentence")
        shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if shortcut and shortcut not in action.toolTip():
            problems.append(f"{name}: its tooltip does not say its shortcut {shortcut}")
    assert not problems, "\n".join(problems)
    # A toolbar button shows its action's tooltip, shortcut included.
    open_button = next(w for w in visible_controls(window) if getattr(w, "defaultAction", lambda: None)()
                       is window.commands.open)
    assert QKeySequence(QKeySequence.StandardKey.Open).toString(QKeySequence.SequenceFormat.NativeText) \
        in open_button.toolTip()


def test_every_column_header_and_tab_says_what_it_shows(window):
    headers = [h for h in window.findChildren(QHeaderView) if h.orientation() == Qt.Orientation.Horizontal
               and h.model() is not None and h.isVisibleTo(window)]
    assert len(headers) >= 2  # the songs and the failures
    missing = []
    for header in headers:
        model = header.model()
        for section in range(model.columnCount()):
            tip = model.headerData(section, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
            if not tip or not is_sentence(tip):
                missing.append(f"{type(model).__name__} column {section}")
    for tabs in window.findChildren(QTabWidget):
        missing += [f"tab {tabs.tabText(i)}" for i in range(tabs.count()) if not is_sentence(tabs.tabToolTip(i))]
    assert not missing, "\n".join(missing)
