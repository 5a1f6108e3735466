"""SmtpSender.send_raw against a server that offers PIPELINING (aiosmtpd does not): replies, faults, reuse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from crm.mail import PermanentMailError, SmtpSender, TransientMailError
from tests.harness import free_port


class PipeliningServer:
    """Reads commands one by one (as any server must), answers RCPT from `faults`, keeps each message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.faults: dict[str, list[str]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"220 test ESMTP\r\n")
        rcpt, ok = "", False
        while line := await reader.readline():
            cmd = line[:4].upper()
            if cmd == b"EHLO":
                writer.write(b"250-test\r\n250 PIPELINING\r\n")
            elif cmd == b"RCPT":
                rcpt = line.decode().split(":", 1)[1].strip().strip("<>")
                reply = self.faults.get(rcpt, []).pop(0) if self.faults.get(rcpt) else "250 ok"
                ok = reply.startswith("250")
                writer.write(reply.encode() + b"\r\n")
                if reply.startswith("421"):
                    await writer.drain()
                    break
            elif cmd == b"DATA":
                if not ok:
                    writer.write(b"503 need RCPT\r\n")
                else:
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    self.messages.append((rcpt, await reader.readuntil(b"\r\n.\r\n")))
                    writer.write(b"250 accepted\r\n")
            elif cmd == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                if cmd == b"RSET":
                    ok = False
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self.session, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()


@pytest.fixture
def server() -> Iterator[PipeliningServer]:
    srv = PipeliningServer()
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    srv.ready.wait(5)
    yield srv
    srv.loop.call_soon_threadsafe(srv.loop.stop)
    thread.join(5)


def test_pipelined_send_faults_and_connection_reuse(settings: Any, server: PipeliningServer) -> None:
    smtp = settings.model_copy(update={"mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": server.port})
    sender = SmtpSender(smtp)
    body = b"Subject: x\r\n\r\n.a line starting with a dot\r\nend\r\n"
    server.faults = {"soft@example.org": ["451 4.3.0 later"], "hard@example.org": ["550 5.1.1 no such user"],
                     "closing@example.org": ["421 4.7.0 closing"]}
    sender.send_raw("news@example.org", "a@example.org", body, "<1@x>")
    with pytest.raises(TransientMailError):
        sender.send_raw("news@example.org", "soft@example.org", body, "<2@x>")
    sender.send_raw("news@example.org", "soft@example.org", body, "<3@x>")
    with pytest.raises(PermanentMailError) as hard:
        sender.send_raw("news@example.org", "hard@example.org", body, "<4@x>")
    assert hard.value.recipient and not hard.value.is_policy
    with pytest.raises(TransientMailError):
        sender.send_raw("news@example.org", "closing@example.org", body, "<5@x>")
    sender.send_raw("news@example.org", "b@example.org", body, "<6@x>")  # reconnects after the 421
    sender.close()
    assert [r for r, _ in server.messages] == ["a@example.org", "soft@example.org", "b@example.org"]
    assert b"\r\n..a line starting with a dot\r\n" in server.messages[0][1]  # dot-stuffed on the wire
    assert server.connections == 2
