"""Real parts for integration tests: an aiosmtpd SMTP server, a Celery worker process, an API process.

No mocks: the worker is `celery worker` in a subprocess on the real broker, mail goes over
SMTP on loopback, the API is uvicorn on a free port.
"""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from crm.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


# --- SMTP ---------------------------------------------------------------------------------------

Fault = Callable[[str], str | None]  # recipient -> an SMTP reply like "451 4.3.0 try later", or None to accept


class _Handler:
    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        reply = self.catcher.fault(address) if self.catcher.fault else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.catcher.lock:
            self.catcher.messages.append(msg)  # type: ignore[arg-type]
            self.catcher.received_at.append(time.time())
            self.catcher.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.catcher.peers.append(tuple(session.peer))
        return "250 Message accepted"


class SmtpCatcher:
    """A real SMTP server on loopback that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.received_at: list[float] = []  # when each message's DATA completed, for rate checks
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: list[tuple[str, int]] = []  # the client end of each message's connection
        self.lock = threading.Lock()
        self.fault: Fault | None = None
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if str(m["To"]).lower() == address.lower()]

    def wait_for(self, predicate: Callable[[list[EmailMessage]], bool], timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                snapshot = list(self.messages)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.1)
        with self.lock:
            got = [(str(m["To"]), str(m["Subject"])) for m in self.messages]
        raise AssertionError(f"timed out after {timeout}s; SMTP server has {len(got)} messages: {got[:20]}")

    def wait_count(self, address: str, n: int, timeout: float = 30.0) -> list[EmailMessage]:
        self.wait_for(lambda ms: len([m for m in ms if str(m["To"]).lower() == address.lower()]) >= n, timeout)
        return self.to(address)


# --- processes ----------------------------------------------------------------------------------


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The CRM_ environment a subprocess needs to see the same installation as this test."""
    names = ["env", "var_dir", "database_url", "broker_url", "redis_url", "mail_backend", "outbox_dir",
             "smtp_host", "smtp_port", "secret_key", "webhook_secret", "public_base_url", "send_rate",
             "form_rate_limit", "instance", "notify_volunteers", "notify_donations", "mail_from",
             "org_postal_address", "org_name", "org_website", "org_helpline", "timezone",
             "match_postal_prefix", "send_batch_size", "lease_seconds", "smtp_connections",
             "outbox_sweep_seconds"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    for name in names:
        value = getattr(settings, name, None)
        if value is not None:
            env[f"CRM_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class Process:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill9(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acks, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def celery_worker(settings: Settings, log: Path, *, concurrency: int = 2, beat: bool = False,
                  **env: str) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--loglevel", "info",
            "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "-n", f"w{free_port()}@%h"]
    if beat:
        Path(settings.var_dir).mkdir(parents=True, exist_ok=True)  # beat's schedule file lives there
        argv += ["--beat", "--schedule", str(Path(settings.var_dir) / "beat-schedule")]
    return Process(argv, env_for(settings, **env), log).start()


def api_server(settings: Settings, log: Path, port: int | None = None) -> tuple[Process, str]:
    port = port or free_port()
    argv = [sys.executable, "-m", "uvicorn", "crm.asgi:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]
    proc = Process(argv, env_for(settings), log).start()
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", proc)
    return proc, base


def wait_http(url: str, proc: Process | None = None, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc and proc.proc and proc.proc.poll() is not None:
            raise AssertionError(f"process exited:\n{proc.output()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout}s\n{proc.output()[-3000:] if proc else ''}")
