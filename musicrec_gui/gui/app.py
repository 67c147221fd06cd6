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
    entry = parser.add_mutually_exclusive_group()
    entry.add_argument("--install-desktop-entry", action="store_true",
                       help="put musicrec-gui in the desktop's application menu, with its icon (files in "
                            "$XDG_DATA_HOME, default ~/.local/share: applications/, icons/hicolor/scalable/apps/, "
                            "metainfo/), then quit; a file there that musicrec did not write is never replaced")
    entry.add_argument("--uninstall-desktop-entry", action="store_true",
                       help="remove the files --install-desktop-entry wrote (only those), then quit")
    return parser


def desktop_entry_command(args) -> int:
    """``--install-desktop-entry`` / ``--uninstall-desktop-entry``: no window, no Qt."""
    from musicrec_gui.core.names import display_text
    from musicrec_gui.integrations import desktop

    try:
        if args.install_desktop_entry:
            written = desktop.install()
            print("installed musicrec-gui in the application menu:")
            for path in written:
                print(f"  {display_text(str(path))}")
            print("It shows in the menu at once on most desktops (or after logging in again); "
                  "'musicrec-gui --uninstall-desktop-entry' removes it.")
            return 0
        removal = desktop.uninstall()
    except desktop.DesktopEntryError as err:
        print(f"musicrec-gui: error: {err}", file=sys.stderr)
        return 1
    for path in removal.removed:
        print(f"removed {display_text(str(path))}")
    for path, why in removal.kept:
        print(f"left {display_text(str(path))} as it is: {why}", file=sys.stderr)
    if not removal.removed and not removal.kept:
        print("no desktop entry of musicrec-gui was installed; nothing to remove.")
    return 0


def main(argv: list[str] | None = None, *, end_process: bool = True) -> int:
    """Run the app; when it closes, end the process (``end_process=False`` returns the exit code instead)."""
    args = build_parser().parse_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return desktop_entry_command(args)
    _quit_quietly_until_the_window_exists()
    from musicrec_gui.core.runtime import quiet_tensorflow

    quiet_tensorflow()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.encoder import EncoderError, encoder_path_for
    from musicrec_gui.core.library import Library, LibraryError
    from musicrec_gui.gui.player import make_player
    from musicrec_gui.gui.preferences import APPLICATION, ORGANISATION, open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    from PySide6.QtGui import QIcon

    from musicrec_gui.integrations.desktop import APP_ID, icon_path

    app.setWindowIcon(QIcon(str(icon_path())))  # every window and dialog, and the X11 taskbar
    app.setDesktopFileName(APP_ID)  # Wayland shows the installed entry's name and icon for the window
    _wake_qt_on_signals(app)
    pg.setConfigOptions(antialias=True)
    try:
        library = Library(args.library)
    except LibraryError as err:
        _tell_error(str(err))
        return 1
    code = 1
    try:
        # From here a signal no longer ends the process at once: it closes the window (below), or,
        # arriving while the window is being built, as soon as it is.
        _SIGNALS["window"] = True
        store = open_store(str(args.settings) if args.settings else None)
        player = make_player(disabled_reason="Audio preview is off (--no-audio)." if args.no_audio else None)
        try:
            encoder_path = encoder_path_for(args.encoder)
        except EncoderError as err:
            _tell_error(str(err))
            code = 2
            return code
        window = MainWindow(library, store, encoder_path=encoder_path, player=player, folder=args.folder)
        window.show()
        _close_on_signals(window, app)
        if args.screenshot:
            _arm_screenshot(window, args.screenshot, app)
        code = app.exec()
    except Exception:  # noqa: BLE001 - a bug: said with its traceback, then the same orderly exit
        import traceback

        traceback.print_exc()
    finally:
        # closeEvent has saved the preferences, stopped PortAudio and the workers, and joined the
        # engine (or given up on a load that cannot be interrupted); closing the library checkpoints its WAL.
        library.close()
        if end_process:
            _end_process(code)
    return code


def _end_process(code: int) -> None:
    """End the process now, without finalizing the interpreter.

    By now everything worth keeping is written: preferences synced, PortAudio stopped, the
    engine joined (or inside a load that cannot be interrupted and writes nothing), the library
    closed. Finalizing the interpreter adds nothing to that, and it is where the app crashed at
    exit ("Fatal Python error: … deallocating None … Garbage-collecting": Qt's objects collected
    in an order PySide6 does not survive, or around a thread still importing TensorFlow), and
    where the process lingered for seconds waiting for such a thread.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_SIGNALS: dict = {"window": False, "received": False, "close": None}


def _tell_error(message: str) -> None:
    """An error that stops the app before its window: on stderr (for a terminal, or no display) and in a dialog."""
    from PySide6.QtWidgets import QMessageBox

    print(f"musicrec-gui: {message}", file=sys.stderr, flush=True)
    QMessageBox.critical(None, "musicrec", message)


def _quit_quietly_until_the_window_exists() -> None:
    """SIGINT (Ctrl-C in the terminal) and SIGTERM (a desktop logout) end the app the way its close
    button would, whatever it is doing:

    - before the window is being built (imports, opening the library): exit code 0 at once,
      nothing has been changed that would need saving;
    - while a dialog waits for a click (an error at start, a warning, the About box): the dialog
      is closed, as no one may be there to click it (a logout, a machine without a display);
    - once the window exists: it is closed, which saves the preferences and stops everything;
      arriving while it is being built, as soon as it is.
    """
    import signal

    def handle(_signum, _frame) -> None:
        _SIGNALS["received"] = True
        if not _SIGNALS["window"] and not _closing_dialogs():
            sys.exit(0)
        _closing_dialogs(close=True)
        if _SIGNALS["close"] is not None:
            _SIGNALS["close"]()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)


def _closing_dialogs(*, close: bool = False) -> bool:
    """Whether a modal dialog is open (and, with ``close``, close it)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    dialog = app.activeModalWidget() if app is not None else None
    if dialog is not None and close:
        dialog.close()
    return dialog is not None


def _wake_qt_on_signals(app) -> None:
    """Let Python's signal handler run promptly inside Qt's event loops (the app's and every dialog's).

    Python runs signal handlers only between bytecodes, and Qt's loops are C++: the handler's
    wake-up byte on a socket, watched by Qt, is what hands control back to Python.
    """
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            reader.recv(64)
        except OSError:
            pass

    notifier.activated.connect(drain)
    app._musicrec_signal_sockets = (reader, writer, notifier)  # kept alive as long as the app


def _close_on_signals(window, app) -> None:
    """From now on a signal closes the window like its close button (and one that came meanwhile does now)."""
    def close() -> None:
        window.close()
        app.quit()

    _SIGNALS["close"] = close
    if _SIGNALS["received"]:  # it came while the window was being built
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, close)


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
