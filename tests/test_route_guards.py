"""Every staff API route carries a role guard; the public ones are listed here by name."""

from __future__ import annotations

from typing import Any

from litestar.routes import HTTPRoute

# Reached by the website, email links or the mail provider: no staff token, on purpose.
PUBLIC = {
    ("GET", "/api/v1/interests"),
    ("POST", "/api/v1/forms/newsletter"),
    ("POST", "/api/v1/forms/volunteer-interest"),
    ("POST", "/api/v1/forms/donation-inquiry"),
    ("GET", "/api/v1/preferences/{token:str}"),
    ("PUT", "/api/v1/preferences/{token:str}"),
    ("POST", "/api/v1/webhooks/bounces"),
    # The volunteer's own page (JSON twin): a volunteer-purpose token, scoped to that contact.
    ("GET", "/api/v1/volunteer-portal/{token:str}"),
    ("POST", "/api/v1/volunteer-portal/{token:str}/signups"),
    ("DELETE", "/api/v1/volunteer-portal/{token:str}/signups/{signup_id:int}"),
    ("POST", "/api/v1/volunteer-portal/{token:str}/hours"),
}
ROLE_GUARDS = {"requires_viewer", "requires_editor", "requires_admin"}


def _unguarded(app: Any) -> list[tuple[str, str]]:
    missing = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/v1/"):
            continue
        for handler in route.route_handlers:
            names = {getattr(getattr(g, "func", g), "__name__", "") for g in handler.resolve_guards()}
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                if not names & ROLE_GUARDS and (method, route.path) not in PUBLIC:
                    missing.append((method, route.path))
    return missing


def test_every_staff_route_has_a_role_guard(app: Any) -> None:
    assert _unguarded(app) == []


def test_the_public_list_names_only_routes_that_exist(app: Any) -> None:
    routes = {(m, r.path) for r in app.routes if isinstance(r, HTTPRoute)
              for h in r.route_handlers for m in h.http_methods}
    assert sorted(PUBLIC - routes) == []
