"""The gate in front of every public post: origin, content type, and a body that decodes safely.

Anyone can post to the public routes, so three checks run before any handler sees a byte:
- an `Origin` that CRM_ALLOWED_ORIGINS does not allow is refused with 403 whatever the content type
  (CORS only stops a browser reading the answer; a text/plain post is sent without a preflight);
- the JSON routes accept only application/json (415), so a cross-site "simple" request cannot post;
- a JSON body is decoded once here, depth-limited, so nesting that would exhaust the recursion limit
  of a decoder or validator further in is a 400 naming `body`, never a 500.
Requests without an Origin (curl, mail clients doing RFC 8058 one-click) are not browsers posting
cross-site and pass.
"""

from __future__ import annotations

import json
from typing import Any

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import AbstractMiddleware, DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

MAX_DEPTH = 32
BODY_LIMIT = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def json_depth_ok(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the nesting of a JSON text stays within `limit` (brackets inside strings ignored)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return True  # the common case costs two C-speed counts
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def body_problem(raw: bytes) -> str | None:
    """Why a JSON body cannot be accepted, or None."""
    if not json_depth_ok(raw):
        return f"is nested more than {MAX_DEPTH} levels deep"
    try:
        json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        return "is nested too deeply"
    except ValueError as exc:  # UnicodeDecodeError included
        return f"is not valid JSON: {str(exc)[:200]}"
    return None


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("a number is out of range")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _origin_allowed(origin: str, allowed: list[str], own: str) -> bool:
    origin = origin.strip().rstrip("/")
    return "*" in allowed or origin in allowed or origin == own


def _own_origin(base_url: str) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".rstrip("/")


async def _answer(send: Send, status: int, detail: str, errors: dict[str, str] | None = None) -> None:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if errors:
        body["errors"] = errors
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class PublicPostGuard(AbstractMiddleware):
    scopes = {ScopeType.HTTP}

    def __init__(self, app: ASGIApp, json_only: bool = False) -> None:
        super().__init__(app)
        self.json_only = json_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        settings = scope["app"].state.settings
        origin = headers.get("origin")
        if origin is not None and not _origin_allowed(origin, settings.cors_origins,
                                                      _own_origin(settings.public_base_url)):
            await _answer(send, 403, "this origin may not post here (CRM_ALLOWED_ORIGINS)")
            return
        if not self.json_only:
            await self.app(scope, receive, send)
            return
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            await _answer(send, 415, "this route accepts only application/json",
                          {"content-type": "must be application/json"})
            return
        raw = await _read_body(receive)
        if raw is None:
            await _answer(send, 413, f"the body is larger than {BODY_LIMIT} bytes")
            return
        problem = body_problem(raw)
        if problem is not None:
            await _answer(send, 400, f"invalid input: body: {problem}", {"body": problem})
            return
        await self.app(scope, _replay(raw, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(raw: bytes, upstream: Receive) -> Receive:
    """The body already read, then whatever the server says next (a disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await upstream()

    return receive


public_posts = DefineMiddleware(PublicPostGuard)
public_json_posts = DefineMiddleware(PublicPostGuard, json_only=True)
