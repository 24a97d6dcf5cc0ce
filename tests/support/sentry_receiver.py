"""A Sentry envelope receiver: accepts what ``sentry_sdk``'s HTTP transport sends and parses it.

The SDK posts envelopes to ``/api/<project>/envelope/`` (gzip-compressed unless brotli is
installed). An envelope is a JSON header line, then items: an item header line (with an optional
``length``) and its payload. The raw body is kept too (decompressed), so tests can search every byte.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support._server import BackgroundServer


@dataclass
class SentryEnvelope:
    path: str
    headers: dict[str, str]
    body: bytes  # decompressed
    envelope_header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The error events (items of type ``event``), parsed."""
        return [json.loads(payload) for header, payload in self.items if header.get("type") == "event"]


def decompress(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "").lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # only when the SDK found it installed

        return brotli.decompress(body)
    return body


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """Split an envelope into its header and ``(item header, payload)`` pairs (the Sentry envelope format)."""
    header_line, _, rest = body.partition(b"\n")
    header = json.loads(header_line) if header_line.strip() else {}
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item_header, payload))
    return header, items


class SentryReceiver(BackgroundServer):
    """Records envelopes; ``dsn`` is what to give the SDK (``http://public@127.0.0.1:<port>/1``)."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[SentryEnvelope] = []
        self.errors: list[str] = []

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = self.read_body(handler)
        try:
            body = decompress(raw, handler.headers.get("Content-Encoding"))
            if handler.path.rstrip("/").endswith("/envelope"):
                header, items = parse_envelope(body)
            else:  # the legacy /store/ endpoint: one JSON event
                header, items = {}, [({"type": "event"}, body)]
            with self.lock:
                self.envelopes.append(SentryEnvelope(handler.path, dict(handler.headers), body, header, items))
        except Exception as error:  # keep the evidence, answer like Sentry would to a bad request
            with self.lock:
                self.errors.append(f"{type(error).__name__}: {error}")
            self.reply(handler, 400, b'{"detail":"bad envelope"}', "application/json")
            return
        self.reply(handler, 200, b'{"id":"0"}', "application/json")

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for envelope in self.envelopes for event in envelope.events]

    @property
    def raw(self) -> bytes:
        """Every byte received (decompressed), for "this secret appears nowhere" assertions."""
        with self.lock:
            return b"\n".join(envelope.body for envelope in self.envelopes)

    def wait_for_events(self, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events) >= count:
                break
            time.sleep(0.1)
        return self.events
