"""HTTP plumbing shared by every controller: settings, sessions, staff guards, error bodies, paging."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.utils.scope.state import ScopeState
from sqlalchemy.exc import DataError
from sqlmodel import Session

from crm.config import Settings
from crm.db import session_scope
from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from crm.logredact import redact
from crm.origin import RequestMeta
from crm.staff import service as staff_service
from crm.staff.models import Staff, StaffRole

log = logging.getLogger(__name__)


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    return connection.app.state.settings  # type: ignore[no-any-return]


@contextmanager
def db(connection: ASGIConnection[Any, Any, Any, Any]) -> Iterator[Session]:
    with session_scope(settings_of(connection)) as session:
        yield session


def request_meta(request: Request[Any, Any, Any]) -> RequestMeta:
    return RequestMeta(client_ip=request.client.host if request.client else None,
                       user_agent=request.headers.get("user-agent"))


# --- staff auth -------------------------------------------------------------------------------


def current_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> Staff:
    cached = connection.scope.get("crm_staff")  # type: ignore[typeddict-item]
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("a staff token is required: Authorization: Bearer <token>",
                                     headers={"WWW-Authenticate": "Bearer"})
    with db(connection) as session:
        staff = staff_service.authenticate(session, token.strip())
        if staff is not None:
            session.expunge(staff)
    if staff is None:
        raise NotAuthorizedException("invalid staff token", headers={"WWW-Authenticate": "Bearer"})
    connection.scope["crm_staff"] = staff  # type: ignore[typeddict-unknown-key]
    return staff


def _role_guard(role: StaffRole):  # type: ignore[no-untyped-def]
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        staff = current_staff(connection)
        if not staff_service.has_role(staff, role):
            raise PermissionDeniedException(f"this needs the {role.value} role; you are {staff.role}")

    guard.__name__ = f"requires_{role.value}"
    return guard


requires_viewer = _role_guard(StaffRole.viewer)
requires_editor = _role_guard(StaffRole.editor)
requires_admin = _role_guard(StaffRole.admin)




# --- errors -----------------------------------------------------------------------------------


def check_choice(name: str, value: str | None, allowed: list[str]) -> None:
    """A query parameter that must be one of `allowed` (a 400 naming it and the choices)."""
    if value is not None and value not in allowed:
        raise Invalid.field(name, f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def error_body(status: int, detail: str, errors: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status = {Invalid: 400, NotFound: 404, Conflict: 409, Forbidden: 403}.get(type(exc), 400)
    return Response(error_body(status, exc.message, exc.fields or None), status_code=status)


_JSON_TYPES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "null": "null", "array": "a list", "object": "a JSON object"}
_EXPECTED = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_MEMBER = re.compile(r"Object (contains unknown|missing required) field `([^`]+)`")


def _json_types(names: str) -> str:
    return " or ".join(_JSON_TYPES.get(n.strip(), n.strip()) for n in names.split("|"))


def _field_error(key: str, message: str) -> tuple[str, str]:
    """msgspec's words for a typed body, said as our own validation says them, naming the field."""
    if member := _MEMBER.fullmatch(message):
        kind, name = member.groups()
        field = name if key in ("data", "body") else f"{key}.{name}"
        return field, "unknown field" if kind == "contains unknown" else "is required"
    if expected := _EXPECTED.fullmatch(message):
        key = "body" if key == "data" else key  # the request body as a whole
        return key, f"must be {_json_types(expected[1])}, not {_json_types(expected[2])}"
    return key, message


def _explained(request: Request[Any, Any, Any], errors: dict[str, str]) -> dict[str, str]:
    """A typed body stops at its first bad field; a handler's `opt={"explain": check}` names them all.

    `check(session, settings, raw, path_params)` is the domain's own validation of the raw JSON object
    (it raises Invalid with every field), in a transaction that is rolled back, so one 400 lists every
    bad and unknown field and nothing is written.
    """
    handler = request.scope.get("route_handler")
    check = handler.opt.get("explain") if handler is not None else None
    body = ScopeState.from_scope(request.scope).body
    if check is None or not isinstance(body, bytes | bytearray):
        return errors
    try:
        raw = json.loads(body)
    except ValueError:
        return errors
    if not isinstance(raw, dict):
        return errors
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            check(session, settings, raw, dict(request.path_params))
        except Invalid as exc:
            errors = {**errors, **exc.fields}
        except Exception:  # noqa: BLE001 - a 404 or 409 the body would meet later: the 400 stands as it is
            log.debug("explain of %s found no field errors", request.url.path, exc_info=True)
        finally:
            session.rollback()
    return errors


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors: dict[str, str] = {}
    for item in exc.extra or []:  # type: ignore[union-attr]
        if isinstance(item, dict):
            key, message = _field_error(str(item.get("key") or item.get("source") or "body"),
                                        str(item.get("message", "is invalid")).removeprefix("Value error, "))
            errors.setdefault(key, message)
    errors = _explained(request, errors)
    if not errors:
        errors["body"] = str(exc.detail)
    summary = "; ".join(f"{k}: {v}" for k, v in errors.items())
    return Response(error_body(400, f"invalid input: {summary}", errors), status_code=400)


# Every id column is a 32-bit integer on PostgreSQL; SQLite refuses beyond 64 bits with an OverflowError.
MAX_ID = 2**31 - 1


def ids_in_range(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An integer path parameter no row can have is the caller's mistake: a 400 naming it."""
    bad = [{"key": name, "source": "path", "message": f"must be between 0 and {MAX_ID}"}
           for name, value in connection.path_params.items()
           if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ID]
    if bad:
        raise ValidationException("a path parameter is out of range", extra=bad)


def _overflow(_: Request[Any, Any, Any], exc: OverflowError) -> Response[dict[str, Any]]:
    # SQLite cannot bind integers beyond 64 bits: a number the caller sent, not our failure.
    return Response(error_body(400, "a number is out of range", {"body": "number out of range"}), status_code=400)


def _data_error(_: Request[Any, Any, Any], exc: DataError) -> Response[dict[str, Any]]:
    # PostgreSQL refuses values its columns cannot hold (an id beyond integer range, say): that is
    # the caller's input, not our failure.
    return Response(error_body(400, "a value is out of range for this field", {"body": "value out of range"}),
                    status_code=400)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # Litestar picks a 500 handler for every exception no other handler claims: the traceback goes
    # to the log (the only place it is of use), the caller gets a plain body with no internals.
    log.exception("unhandled error on %s %s", request.method, redact(request.url.path), exc_info=exc)
    return Response(error_body(500, "internal server error"), status_code=500)


exception_handlers: dict[type[Exception] | int, Any] = {
    HTTP_500_INTERNAL_SERVER_ERROR: _unexpected,
    DomainError: _domain_error,
    ValidationException: _validation_error,
    DataError: _data_error,
    OverflowError: _overflow,
}


# --- cursor paging ----------------------------------------------------------------------------


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise Invalid.field("cursor", "is not a cursor this API gave out") from None


def decode_id_cursor(cursor: str | None) -> int | None:
    """The id a keyset-paged list gave out as its next_cursor (every list here pages by id)."""
    after = decode_cursor(cursor)
    if after is not None and (not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID):
        raise Invalid.field("cursor", "is not a cursor this API gave out")
    return after


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
