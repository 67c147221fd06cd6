"""Run short jobs (decoding, spectrograms, index building) off the GUI thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot


class BackgroundJobs(QObject):
    """A small thread pool whose results come back to the GUI thread as callbacks.

    ``submit(fn, on_result, on_error)`` runs ``fn()`` in a pool thread and then
    calls ``on_result(value)`` or ``on_error(exception)`` in the GUI thread.
    These jobs never touch the encoder and never write to the library.
    """

    _finished = Signal(object, object, object)  # callback, value, error

    def __init__(self, workers: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="musicrec-gui-job")
        self._closed = False
        self._finished.connect(self._on_finished)

    def submit(self, fn: Callable[[], Any], on_result: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> None:
        if self._closed:
            return

        def run() -> None:
            try:
                value = fn()
            except Exception as err:  # noqa: BLE001 - reported to the GUI thread
                self._emit(on_error, None, err)
            else:
                self._emit(on_result, value, None)

        self._pool.submit(run)

    def _emit(self, callback, value, error) -> None:
        if self._closed:
            return
        try:
            self._finished.emit(callback, value, error)
        except RuntimeError:  # the QObject is gone (window closed)
            pass

    @Slot(object, object, object)
    def _on_finished(self, callback, value, error) -> None:
        if self._closed or callback is None:
            return
        callback(error if error is not None else value)

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
