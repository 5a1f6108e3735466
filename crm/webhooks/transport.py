"""A lean HTTP/1.1 client for webhook lanes: one kept-alive connection per receiver, one send per POST.

httpx cost a lane 1.7 ms of CPU a POST (and sent headers and body as two segments); a delivery needs
little of it: a POST with a small body and a bounded look at the answer. What stays as strict:

- the SSRF check (crm.webhooks.safety) runs on every new connection, and the connection goes to the
  checked address (Host header and TLS server name kept as written), so a name re-pointed at an
  internal address cannot be reached; a connection is kept at most MAX_AGE seconds, then the name is
  resolved and checked again;
- one deadline for the whole exchange (connect, send, every read): a receiver trickling its answer
  cannot stretch it;
- redirects are answers like any other (a 3xx is not a 2xx), never followed;
- at most `max_response` bytes of an answer are read; a connection whose answer was cut short is
  closed, never reused.

A kept-alive connection the receiver closed while idle is noticed before use (readable at once) and
replaced; if the receiver closes it as the request goes out (no byte of an answer), the POST is sent
once more on a new connection: the same webhook-id, so at worst an honest receiver sees a duplicate.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote, urlsplit

from crm.webhooks import safety

MAX_AGE = 60.0  # seconds a connection is reused before the host is resolved and checked again
MAX_IDLE = 30.0  # an idle connection older than this is dropped rather than tried
MAX_CONNECTIONS = 16  # per lane; the oldest goes when a new one would pass it
_LINE = 8192
_HEADERS = 100


class ProtocolError(OSError):
    """The receiver's answer is not HTTP/1.x we can read."""


class Closed(ConnectionError):
    """The receiver closed the connection before its answer was complete."""


@dataclass(frozen=True)
class Response:
    status: int
    size: int  # bytes of the body read, at most the bound (more were not read)


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # loading the CA bundle costs ~60 ms: once per process


def _host_header(host: str, port: int, scheme: str) -> str:
    """`Host` as written in the URL (an IDN in its ASCII form, an IPv6 literal in brackets)."""
    if ":" in host:
        name = f"[{host}]"
    else:
        try:
            name = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"host {host!r} cannot be written in a Host header") from None
    return name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"


class _Conn:
    def __init__(self, sock: socket.socket, key: tuple[str, str, int, bool]) -> None:
        self.sock, self.key = sock, key
        self.opened = self.used = time.monotonic()
        self.buf = bytearray()
        self.received = 0  # bytes of answers read since this connection was last taken for a POST

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def stale(self, now: float) -> bool:
        """Closed by the receiver while idle (EOF or stray bytes are readable), too old, or idle too long."""
        if now - self.opened > MAX_AGE or now - self.used > MAX_IDLE or self.buf:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise Closed("the receiver closed the connection")
        self.received += len(data)
        self.buf += data

    def line(self, deadline: float) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > _LINE:
                raise ProtocolError("answer line too long")
            self._fill(deadline)
        out = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return out

    def skip(self, n: int, deadline: float) -> None:
        while len(self.buf) < n:
            n -= len(self.buf)
            self.buf.clear()
            self._fill(deadline)
        del self.buf[:n]

    def until_close(self, bound: int, deadline: float) -> int:
        size = len(self.buf)
        self.buf.clear()
        try:
            while size <= bound:
                self._fill(deadline)
                size += len(self.buf)
                self.buf.clear()
        except Closed:
            pass
        return min(size, bound)


class Transport:
    """One lane's connections (not thread-safe: a lane owns its transport)."""

    def __init__(self, timeout: float = 15.0, max_response: int = 64 * 1024, tls: ssl.SSLContext | None = None
                 ) -> None:
        self.timeout, self.max_response, self.tls = timeout, max_response, tls  # tls: the tests' own CA
        self._conns: dict[tuple[str, str, int, bool], _Conn] = {}
        self.connections_opened = 0

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def post(self, url: str, headers: dict[str, str], body: bytes, *, production: bool) -> Response:
        """POST `body`; raises crm.errors.Invalid (refused URL), TimeoutError, or OSError (connection,
        TLS, a malformed answer)."""
        deadline = time.monotonic() + self.timeout
        parts = urlsplit(url)
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~") + (f"?{quote(parts.query, safe='=&%+;/:@,!$()*')}"
                                                                       if parts.query else "")
        conn, reused = self._connection(url, production, deadline)
        host = _host_header(parts.hostname or "", conn.key[2], parts.scheme)
        head = [f"POST {path} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} carries a line break")
            head.append(f"{name}: {value}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            return self._exchange(conn, request, deadline)
        except (Closed, ConnectionResetError, BrokenPipeError):
            if not reused or conn.received:
                raise
            # Closed by the receiver as the request went out on a kept-alive connection, not a byte of
            # an answer: once more on a new connection.
            conn, _ = self._connection(url, production, deadline, fresh=True)
            return self._exchange(conn, request, deadline)

    def _connection(self, url: str, production: bool, deadline: float, *, fresh: bool = False
                    ) -> tuple[_Conn, bool]:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port, production)
        conn = self._conns.pop(key, None)
        if conn is not None:
            if not fresh and not conn.stale(time.monotonic()):
                self._conns[key] = conn
                conn.received = 0
                return conn, True
            conn.close()
        target = safety.check_url(url, production)  # every new connection: resolve and refuse internal
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock = socket.create_connection((target.ip, target.port), timeout=left)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = (self.tls or _tls()).wrap_socket(sock, server_hostname=target.host)
        except BaseException:
            sock.close()
            raise
        conn = _Conn(sock, key)
        self.connections_opened += 1
        while len(self._conns) >= MAX_CONNECTIONS:
            self._conns.pop(next(iter(self._conns))).close()
        self._conns[key] = conn
        return conn, False

    def _exchange(self, conn: _Conn, request: bytes, deadline: float) -> Response:
        keep = False
        try:
            conn.sock.settimeout(max(deadline - time.monotonic(), 1e-3))
            conn.sock.sendall(request)  # head and body in one send
            try:
                status, size, keep = self._answer(conn, deadline)
            except ValueError as exc:  # a length that is not a number
                raise ProtocolError(f"malformed answer: {exc}") from None
            return Response(status, size)
        finally:
            conn.used = time.monotonic()
            if not keep:
                self._conns.pop(conn.key, None)
                conn.close()

    def _answer(self, conn: _Conn, deadline: float) -> tuple[int, int, bool]:
        """(status, body bytes read, whether the connection may carry the next POST)."""
        version, status, fields = _head(conn, deadline)
        while 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): the real one follows
            version, status, fields = _head(conn, deadline)
        tokens = {t.strip() for t in fields.get(b"connection", b"").split(b",")}
        keep = b"close" not in tokens and (version != b"HTTP/1.0" or b"keep-alive" in tokens)
        if status in (204, 304) or status < 200:
            return status, 0, keep and status != 101
        if b"chunked" in fields.get(b"transfer-encoding", b""):
            size = _chunked(conn, self.max_response, deadline)
            return status, min(size, self.max_response), keep and size <= self.max_response
        if b"content-length" in fields:
            length = int(fields[b"content-length"])
            if length < 0:
                raise ProtocolError("negative content-length")
            conn.skip(min(length, self.max_response), deadline)
            return status, min(length, self.max_response), keep and length <= self.max_response
        return status, conn.until_close(self.max_response, deadline), False


def _head(conn: _Conn, deadline: float) -> tuple[bytes, int, dict[bytes, bytes]]:
    first = conn.line(deadline)
    version, _, rest = first.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x answer: {first[:80]!r}")
    fields: dict[bytes, bytes] = {}
    for _ in range(_HEADERS + 1):
        line = conn.line(deadline)
        if not line:
            return version, int(code), fields
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    raise ProtocolError("too many answer headers")


def _chunked(conn: _Conn, bound: int, deadline: float) -> int:
    """Read a chunked body up to `bound` bytes; more than the bound returns bound + 1 (not all read)."""
    size = 0
    while chunk := int(conn.line(deadline).split(b";")[0].strip() or b"x", 16):
        if size + chunk > bound:
            return bound + 1
        conn.skip(chunk + 2, deadline)
        size += chunk
    while conn.line(deadline):  # trailers
        pass
    return size
