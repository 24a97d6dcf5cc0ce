"""A Slack incoming-webhook stub: answers like Slack (``200 ok``), or fails on demand, and records every post."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support._server import BackgroundServer

WEBHOOK_PATH = "/services/T0/B0/X"


@dataclass
class SlackPost:
    path: str
    headers: dict[str, str]
    raw: bytes
    received_at: float  # time.time()

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


class SlackStub(BackgroundServer):
    """``mode``: ``"ok"`` (200 ``ok``), ``"error"`` (500, a Slack outage) or ``"slow"`` (answers after ``delay`` s).

    The mode can change while the server runs. Every request is recorded, whatever the mode.
    """

    def __init__(self, mode: str = "ok", delay: float = 30.0) -> None:
        super().__init__()
        self.mode = mode
        self.delay = delay
        self.posts: list[SlackPost] = []
        self._released = threading.Event()

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def connection_json(self) -> str:
        """``AIRFLOW_CONN_SLACK_DEFAULT`` for this stub (the full webhook URL as the password)."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.webhook_url})

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = self.read_body(handler)
        with self.lock:
            self.posts.append(SlackPost(handler.path, dict(handler.headers), raw, time.time()))
        mode = self.mode
        if mode == "slow":
            self._released.wait(self.delay)
            self.reply(handler, 200, b"ok")
        elif mode == "error":
            self.reply(handler, 500, b"internal_error")
        else:
            self.reply(handler, 200, b"ok")

    def stop(self) -> None:
        self._released.set()  # let slow handlers finish
        super().stop()

    def wait_for(self, count: int = 1, timeout: float = 60.0) -> list[SlackPost]:
        """Wait until at least ``count`` posts arrived; return all posts so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.1)
        with self.lock:
            return list(self.posts)
