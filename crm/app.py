"""create_app(settings): the one place that knows every domain."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry

from crm.campaigns.digest_routes import DigestController
from crm.campaigns.routes import BounceWebhookController, CampaignController, TrackingController
from crm.config import Settings, get_settings
from crm.contacts.routes import ContactController
from crm.content.routes import ContentController
from crm.donations.routes import DonationInquiryController
from crm.emailtemplates.routes import TemplateController
from crm.forms.routes import FormController, InterestController
from crm.health import health, ready
from crm.http import exception_handlers
from crm.jobs.routes import JobController
from crm.preferences.routes import (
    ConfirmController,
    LinkController,
    PreferencesApiController,
    PreferencesController,
    UnsubscribeController,
)
from crm.segments.routes import SegmentController
from crm.staff.routes import AuditController
from crm.volunteers.portal_routes import PortalApiController, PortalController
from crm.volunteers.routes import OpportunityController, RespondController, VolunteerController
from crm.volunteers.shift_routes import HoursController, QualificationController, ShiftController


class FormRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter plus the Retry-After header a 429 should carry."""

    def create_response_headers(self, cache_object: Any) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        reset = headers.get(self.config.rate_limit_reset_header_key)
        if reset is not None:
            headers["Retry-After"] = str(max(1, int(reset)))
        return headers


def _stores(settings: Settings) -> StoreRegistry:
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        root = RedisStore.with_client(url=settings.redis_url, namespace=settings.instance)
        return StoreRegistry(default_factory=root.with_namespace)
    return StoreRegistry(default_factory=lambda _name: MemoryStore())


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    settings.resolved_secret("secret_key")  # fail (or generate) at startup, not at the first email
    rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.form_rate_limit),
        store="form_rate_limit",
        middleware_class=FormRateLimitMiddleware,
    )
    public_forms = Router(path="/", route_handlers=[FormController, LinkController], middleware=[rate_limit.middleware])
    # No origins (production without CRM_ALLOWED_ORIGINS) allows none: every preflight is refused and no
    # Access-Control-Allow-Origin is sent. Never "null": sandboxed iframes and file:// pages send that origin.
    cors = CORSConfig(allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "PUT", "OPTIONS"],
                      allow_headers=["content-type", "authorization"], max_age=600)
    app = Litestar(
        route_handlers=[
            health, ready, InterestController, public_forms, ConfirmController,
            PreferencesController, PreferencesApiController, UnsubscribeController,
            ContactController, VolunteerController, OpportunityController, RespondController,
            ShiftController, QualificationController, HoursController, PortalController, PortalApiController,
            DonationInquiryController,
            CampaignController, BounceWebhookController, TrackingController,
            SegmentController, ContentController, DigestController,
            JobController, TemplateController, AuditController,
        ],
        cors_config=cors,
        exception_handlers=exception_handlers,
        stores=_stores(settings),
        openapi_config=OpenAPIConfig(
            title="Charity CRM", version="1.0.0", path="/schema",
            render_plugins=[SwaggerRenderPlugin(), ScalarRenderPlugin(path="/scalar")],
        ),
        debug=False,
    )
    app.state.settings = settings
    return app
