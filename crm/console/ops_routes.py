"""The operations sections of the console, listed once for crm.console.sections."""

from __future__ import annotations

from litestar import Controller

from crm.console.audit_routes import AuditPages
from crm.console.donations_routes import DonationsPages
from crm.console.imports_routes import ImportsPages
from crm.console.suppressions_routes import SuppressionsPages

OPS_PAGES: list[type[Controller]] = [DonationsPages, ImportsPages, AuditPages, SuppressionsPages]
