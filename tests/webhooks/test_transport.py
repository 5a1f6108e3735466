"""The lanes' HTTP/1.1 transport against real servers on loopback: reuse, closes, bounds, deadlines, SSRF."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from crm.errors import Invalid
from crm.webhooks import safety, transport
from crm.webhooks.transport import Transport

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@dataclass
class Raw:
    """A raw TCP server: `answer(n, request)` gives the bytes for the n-th request overall (from 1) and
    whether to close the connection after them; None closes without answering."""

    answer: Callable[[int, bytes], tuple[bytes | None, bool]]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    first_reads: list[bytes] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    _sock: socket.socket | None = None

    @property
    def url(self) -> str:
        assert self._sock is not None
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook?x=1"

    def start(self) -> Raw:
        self._sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client gave up (a test of bounds or deadlines)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._exchange(conn)

    def _exchange(self, conn: socket.socket) -> None:
        buf, first = b"", True
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    if first:
                        self.first_reads.append(data)
                        first = False
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buf = rest[length:]
                out, close = self.answer(len(self.requests), self.requests[-1])
                if out is None:
                    return
                try:
                    conn.sendall(out)
                except OSError:
                    return
                if close:
                    return

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., Raw]]:
    started: list[Raw] = []

    def make(answer: Callable[[int, bytes], tuple[bytes | None, bool]]) -> Raw:
        r = Raw(answer).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


def _post(t: Transport, url: str, body: bytes = b'{"a":1}', production: bool = False) -> transport.Response:
    return t.post(url, {"content-type": "application/json", "webhook-id": "msg_1"}, body, production=production)


def test_one_connection_is_kept_alive_across_posts_and_each_goes_in_one_send(raw):
    server = raw(lambda _n, _r: (OK, False))
    t = Transport()
    for _ in range(5):
        assert _post(t, server.url) == transport.Response(200, 2)
    assert server.connections == 1 and t.connections_opened == 1 and len(server.requests) == 5
    req = server.requests[0]
    assert req.startswith(b"POST /hook?x=1 HTTP/1.1\r\n") and f"host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}".encode() in req
    assert req.endswith(b'\r\n\r\n{"a":1}') and b"content-length: 7\r\n" in req
    assert server.first_reads[0] == req  # head and body arrived together
    t.close()


def test_a_connection_the_server_closes_between_requests_is_replaced(raw):
    # Closed after each answer without saying so (no "connection: close"): noticed before the next use.
    server = raw(lambda _n, _r: (OK, True))
    t = Transport()
    for _ in range(3):
        time.sleep(0.05)
        assert _post(t, server.url).status == 200
    assert server.connections == 3 and len(server.requests) == 3


def test_connection_close_and_http_1_0_are_not_reused(raw):
    server = raw(lambda n, _r: (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n" if n == 1
                                else b"HTTP/1.0 204 No Content\r\n\r\n", False))
    t = Transport()
    assert _post(t, server.url).status == 200
    assert _post(t, server.url).status == 204
    assert t.connections_opened == 2


def test_a_kept_alive_connection_closed_as_the_request_goes_out_is_retried_once_on_a_new_one(raw):
    # The second request reaches a connection the server then drops without a byte of answer.
    server = raw(lambda n, _r: (None, True) if n == 2 else (OK, False))
    t = Transport()
    assert _post(t, server.url).status == 200
    assert _post(t, server.url).status == 200
    assert server.connections == 2 and len(server.requests) == 3


def test_a_fresh_connection_dropped_without_an_answer_is_an_error_not_retried(raw):
    server = raw(lambda _n, _r: (None, True))
    with pytest.raises(ConnectionError):
        _post(Transport(), server.url)
    assert len(server.requests) == 1


def test_an_oversized_answer_is_read_only_to_the_bound_and_the_connection_dropped(raw):
    big = b"x" * 200_000
    server = raw(lambda n, _r: (b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(big), big) if n == 1 else
                                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"10000\r\n" + b"y" * 65536
                                + b"\r\n" + b"10000\r\n" + b"y" * 65536 + b"\r\n0\r\n\r\n", False))
    t = Transport(max_response=1000)
    assert _post(t, server.url) == transport.Response(200, 1000)
    assert _post(t, server.url) == transport.Response(200, 1000)
    assert t.connections_opened == 2


def test_chunked_and_read_until_close_answers(raw):
    server = raw(lambda n, _r: (b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
                                if n == 1 else b"HTTP/1.1 500 Oops\r\n\r\nsomething broke", n != 1))
    t = Transport()
    assert _post(t, server.url) == transport.Response(201, 5)
    assert _post(t, server.url) == transport.Response(500, 15)
    assert server.connections == 1


def test_redirects_are_answers_not_followed(raw):
    server = raw(lambda _n, _r: (b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n", False))
    assert _post(Transport(), server.url).status == 302
    assert len(server.requests) == 1


def test_a_slow_answer_times_out(raw):
    def slow(_n: int, _r: bytes) -> tuple[bytes, bool]:
        time.sleep(1.0)
        return OK, False

    server = raw(slow)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _post(Transport(timeout=0.3), server.url)
    assert time.monotonic() - started < 0.9


def test_a_trickling_answer_cannot_stretch_the_deadline(raw):
    server = raw(lambda _n, _r: (None, True))  # replaced below: the handler trickles from its own socket

    def trickle(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for b in b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"z" * 100:
                try:
                    conn.sendall(bytes([b]))
                except OSError:
                    return
                time.sleep(0.02)

    server._serve = trickle  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _post(Transport(timeout=0.5), server.url)
    assert time.monotonic() - started < 1.0


def test_a_malformed_answer_is_an_error(raw):
    server = raw(lambda _n, _r: (b"SSH-2.0-OpenSSH\r\n\r\n", False))
    with pytest.raises(OSError, match="not an HTTP"):
        _post(Transport(), server.url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/x", "http://localhost:{port}/x",
                                 "http://[::ffff:127.0.0.1]:{port}/x"])
def test_production_refuses_internal_addresses_before_connecting(raw, url):
    server = raw(lambda _n, _r: (OK, False))
    port = server.url.split(":")[2].split("/")[0]
    with pytest.raises(Invalid):
        _post(Transport(), url.format(port=port), production=True)
    assert server.connections == 0


def test_the_check_runs_again_for_each_new_connection(raw, monkeypatch):
    """Kept alive a connection goes to the checked address; a new one is checked again (DNS rebinding)."""
    server = raw(lambda _n, _r: (OK, True))
    checks: list[str] = []
    real = transport.safety.check_url

    def counting(url: str, production: bool, **kw: object) -> object:
        checks.append(url)
        return real(url, production)

    monkeypatch.setattr(transport.safety, "check_url", counting)
    t = Transport()
    for _ in range(3):
        time.sleep(0.05)
        _post(t, server.url)
    assert len(checks) == server.connections == 3

    monkeypatch.setattr(transport.safety, "check_url", lambda url, production, **kw: (_ for _ in ()).throw(
        Invalid.field("url", "refused")))
    with pytest.raises(Invalid):
        _post(t, server.url)
    assert server.connections == 3


def test_host_header_as_written():
    assert transport._host_header("example.org", 443, "https") == "example.org"
    assert transport._host_header("example.org", 8443, "https") == "example.org:8443"
    assert transport._host_header("bücher.example", 80, "http") == "xn--bcher-kva.example"
    assert transport._host_header("::1", 8080, "http") == "[::1]:8080"


def test_https_goes_to_the_checked_address_with_the_name_for_tls_and_host(raw, monkeypatch, tmp_path):
    """hooks.example "resolves" to loopback: the connection goes to that address, the certificate is
    checked against the name (SNI), the Host header carries it, and the connection is kept alive."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=hooks.example", "-addext", "subjectAltName=DNS:hooks.example"],
                   check=True, capture_output=True)
    names: list[str | None] = []
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,return-value]
    server = Raw(lambda _n, _r: (OK, False), tls=server_tls).start()
    port = int(server.url.split(":")[2].split("/")[0])
    monkeypatch.setattr(transport.safety, "check_url",
                        lambda url, production, **kw: safety.Target("https", "hooks.example", port, "127.0.0.1"))
    t = Transport(tls=ssl.create_default_context(cafile=str(cert)))
    try:
        for _ in range(3):
            assert _post(t, f"https://hooks.example:{port}/hook").status == 200
        assert names == ["hooks.example"] and server.connections == 1
        assert f"host: hooks.example:{port}\r\n".encode() in server.requests[0]
        # A name the certificate does not carry is refused by TLS, not sent to.
        monkeypatch.setattr(transport.safety, "check_url",
                            lambda url, production, **kw: safety.Target("https", "other.example", port, "127.0.0.1"))
        with pytest.raises(ssl.SSLCertVerificationError):
            _post(t, f"https://other.example:{port}/hook")
        assert len(server.requests) == 3
    finally:
        t.close()
        server.stop()
