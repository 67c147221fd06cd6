"""``musicrec-gui``: the desktop app's entry point."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from musicrec_gui.options import add_library_options, add_version_option

    parser = argparse.ArgumentParser(prog="musicrec-gui",
                                     description="Find the songs in your music folder that sound like a chosen one.")
    add_version_option(parser)
    add_library_options(parser)
    parser.add_argument("--folder", type=Path, default=None, help="open this music folder at start")
    parser.add_argument("--settings", type=Path, default=None, help="keep the app's preferences in this .ini file")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="FILE.png",
                        help="wait until the scan finishes and a song is shown, save the window as FILE.png, quit")
    parser.add_argument("--no-audio", action="store_true", help="do not open an audio device")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from musicrec_gui.core.runtime import quiet_tensorflow

    quiet_tensorflow()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QMessageBox

    from musicrec_gui.core.library import Library, LibraryError
    from musicrec_gui.gui.player import make_player
    from musicrec_gui.gui.preferences import APPLICATION, ORGANISATION, open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    pg.setConfigOptions(antialias=True)
    try:
        library = Library(args.library)
    except LibraryError as err:
        QMessageBox.critical(None, "musicrec", str(err))
        return 1
    store = open_store(str(args.settings) if args.settings else None)
    player = make_player(disabled_reason="Audio preview is off (--no-audio)." if args.no_audio else None)
    window = MainWindow(library, store, encoder_path=args.encoder, player=player, folder=args.folder)
    window.show()
    if args.screenshot:
        _arm_screenshot(window, args.screenshot, app)
    code = app.exec()
    library.close()
    return code


def _arm_screenshot(window, path: Path, app, timeout_s: float = 300.0) -> None:
    """Grab the window once the scan is idle and the selected song is fully shown."""
    import time

    from PySide6.QtCore import QTimer

    started = time.monotonic()
    stable = {"since": None}

    def ready() -> bool:
        return (not window.engine.scanning and window.anchor is not None and window.spectrogram_ready
                and (window.recommendations.rows or window.recommendations.message.isVisible())
                and window.recommendations.thumbnails_ready())

    def poll() -> None:
        now = time.monotonic()
        if ready():
            stable["since"] = stable["since"] or now
        else:
            stable["since"] = None
        if (stable["since"] and now - stable["since"] > 1.0) or now - started > timeout_s:
            timer.stop()
            path.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(path))
            print(f"saved {path}", flush=True)
            window.close()
            app.quit()

    timer = QTimer(window)
    timer.setInterval(200)
    timer.timeout.connect(poll)
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
