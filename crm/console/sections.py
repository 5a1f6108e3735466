"""Every console controller, registered by crm.app: one line per section module."""

from __future__ import annotations

from litestar import Controller

from crm.console.auth_routes import AccountController, InvitationController, SignInController
from crm.console.campaigns_routes import CampaignPages
from crm.console.contacts_routes import ContactsPages
from crm.console.content_routes import ContentPages, TemplatePages
from crm.console.dashboard_routes import DashboardController
from crm.console.ops_routes import OPS_PAGES
from crm.console.segments_routes import SegmentPages
from crm.console.staff_routes import StaffPages
from crm.console.volunteer_routes import HoursPages, OpportunityPages, ShiftPages, VolunteerPages

CONTROLLERS: list[type[Controller]] = [
    SignInController,
    InvitationController,
    AccountController,
    DashboardController,
    ContactsPages,
    CampaignPages,
    SegmentPages,
    TemplatePages,
    ContentPages,
    VolunteerPages, OpportunityPages, ShiftPages, HoursPages,
    StaffPages,
    *OPS_PAGES,
]
