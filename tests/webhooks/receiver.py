"""A real HTTP receiver on loopback that verifies Standard Webhooks signatures with the library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    """Answers `status(n)` for the n-th request (n from 1); dedupes verified messages by webhook-id."""

    secret: str = ""
    status: Callable[[int], int] = lambda _n: 200
    delay: float = 0.0
    requests: int = 0
    bad_signatures: int = 0
    seen: dict[str, Received] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    duplicates: int = 0
    raw: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests += 1
                    n = receiver.requests
                if receiver.delay:
                    time.sleep(receiver.delay)
                code = receiver.status(n)
                rec = Received(headers.get("webhook-id", ""), json.loads(body), headers, time.monotonic())
                with receiver._lock:
                    receiver.raw.append(rec)
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                    except Exception:  # noqa: BLE001 - any failure to verify counts
                        receiver.bad_signatures += 1
                        code = 400
                    else:
                        if 200 <= code < 300:
                            if rec.webhook_id in receiver.seen:
                                receiver.duplicates += 1
                            else:
                                receiver.seen[rec.webhook_id] = rec
                                receiver.order.append(rec.webhook_id)
                self.send_response(code)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def types(self) -> list[str]:
        return [self.seen[w].body["type"] for w in self.order]

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.seen) >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.seen)} of {n} webhooks arrived; {self.requests} requests")
