"""Signal handling like BR's ``StartExitSingleListener``: the first SIGINT/SIGTERM/SIGHUP/SIGQUIT cancels
the command context (the task fails with ``context canceled``, exit 1); a second one exits at once.

Cancellation is deferred while a :func:`shield` block runs (e.g. the atomic rewrite of the PD state).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import Canceled

_state = {"signals": 0, "shield": 0, "pending": False}
_NAMES = {signal.SIGINT: "interrupt", signal.SIGTERM: "terminated", signal.SIGHUP: "hangup", signal.SIGQUIT: "quit"}


def _handler(signum: int, _frame: FrameType | None) -> None:
    _state["signals"] += 1
    if _state["signals"] > 1:
        os._exit(1)
    from .output import LOG

    LOG.info("signal.go:44", "got signal to exit", ("signal", _NAMES.get(signal.Signals(signum), str(signum))))
    if _state["shield"]:
        _state["pending"] = True
        return
    raise Canceled()


def install() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, _handler)


def canceled() -> bool:
    return _state["signals"] > 0


@contextmanager
def shield() -> Iterator[None]:
    _state["shield"] += 1
    try:
        yield
    finally:
        _state["shield"] -= 1
        if not _state["shield"] and _state["pending"]:
            _state["pending"] = False
            raise Canceled()


def check() -> None:
    if _state["signals"] and not _state["shield"]:
        raise Canceled()
