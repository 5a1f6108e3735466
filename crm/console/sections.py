"""Every console controller, registered by crm.app: one line per section module."""

from __future__ import annotations

from litestar import Controller

from crm.console.auth_routes import AccountController, InvitationController, SignInController
from crm.console.coming_routes import ComingController
from crm.console.contacts_routes import ContactsPages, DashboardController
from crm.console.staff_routes import StaffPages

CONTROLLERS: list[type[Controller]] = [
    SignInController,
    InvitationController,
    AccountController,
    DashboardController,
    ContactsPages,
    StaffPages,
    ComingController,
]
