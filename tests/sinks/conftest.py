"""Fixtures for the sink tests: a clean sink environment and a local HTTP receiver (webhook / FC API stand-in).

The receiver is a real HTTP server on 127.0.0.1 that records every request exactly as received (method, raw path,
query, lower-cased headers, body) and answers with scripted responses, so each test verifies on receipt what a
webhook endpoint or the FC API would verify.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

SINK_ENV = (
    "RESULT_SINK_FILTER RESULT_MNS_TOPIC RESULT_MNS_ENDPOINT RESULT_MNS_FILTER RESULT_WEBHOOK_URL "
    "RESULT_WEBHOOK_SECRET RESULT_WEBHOOK_FILTER RESULT_FC_FUNCTION RESULT_FC_ENDPOINT RESULT_FC_FILTER "
    "RESULT_SINK_TIMEOUT_MS RESULT_SINK_ATTEMPTS TRIGGER_MNS_TOPICS FC_ACCOUNT_ID FC_FUNCTION_NAME"
).split()


@pytest.fixture(autouse=True)
def _clean_sink_env(monkeypatch):
    for name in SINK_ENV:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    """Records requests; answers with `script` replies in order, then with `default`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            self.command, split.path, split.query, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                reply = receiver._next()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = do_PUT = _serve

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def log_records(capsys) -> list[dict[str, Any]]:
    """The function's JSON log lines written so far (consumes captured stdout)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def messages(records: list[dict[str, Any]], msg: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("msg") == msg]
