"""Side calls that must never hold the pipeline up: a deadline for a network call, and a warning said once.

A Slack alert or a Pushgateway push is a courtesy to the people watching, never a reason for a task to
fail or to wait. :func:`call_with_deadline` runs such a call in a daemon thread and stops waiting at
the deadline: the thread is abandoned (a daemon thread does not keep the process alive), so a peer that
accepts the connection and never answers costs the caller ``timeout`` seconds, not the socket's.
:func:`log_once` keeps an outage that every task of a run hits from flooding the logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_logged_once: set[tuple[str, str]] = set()
_once_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """How a bounded call ended: it returned (``ok``), raised (``error``), or was abandoned (``timed_out``)."""

    ok: bool = False
    timed_out: bool = False
    error: BaseException | None = None


def _run(fn: Callable[[], Any], box: dict[str, Any]) -> None:
    # BaseException too: a SystemExit in the sender thread must become an outcome, not a lost thread.
    try:
        fn()
        box["ok"] = True
    except BaseException as error:
        box["error"] = error


def call_with_deadline(fn: Callable[[], Any], timeout: float, name: str) -> Outcome:
    """Call ``fn()`` in a daemon thread called ``name``; wait at most ``timeout`` seconds. Never raises.

    ``fn``'s return value is dropped: the callers here only need to know whether it went through.
    """
    box: dict[str, Any] = {}
    sender = threading.Thread(target=_run, args=(fn, box), name=name, daemon=True)
    try:
        sender.start()
    except RuntimeError as error:  # no thread left in this process: the call is not made
        return Outcome(error=error)
    sender.join(timeout)
    if sender.is_alive():
        return Outcome(timed_out=True)
    if "error" in box:
        return Outcome(error=box["error"])
    return Outcome(ok=True)


def log_once(
    logger: logging.Logger,
    key: str,
    message: str,
    *args: Any,
    level: int = logging.WARNING,
    again: int | None = None,
) -> None:
    """Log ``message`` at ``level`` the first time ``key`` is seen by ``logger`` in this process.

    Later times are logged at ``again`` (e.g. ``logging.DEBUG``), or not at all when it is None.
    """
    with _once_lock:
        first = (logger.name, key) not in _logged_once
        _logged_once.add((logger.name, key))
    if first:
        logger.log(level, message, *args)
    elif again is not None:
        logger.log(again, message, *args)
