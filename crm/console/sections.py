"""Every console controller, registered by crm.app: one line per section module."""

from __future__ import annotations

from litestar import Controller

from crm.console.auth_routes import SignInController
from crm.console.coming_routes import ComingController
from crm.console.contacts_routes import ContactsPages
from crm.console.dashboard_routes import DashboardController
from crm.console.ops_routes import OPS_PAGES

CONTROLLERS: list[type[Controller]] = [
    SignInController,
    DashboardController,
    ContactsPages,
    *OPS_PAGES,
    ComingController,
]
