"""create_app(settings): the one place that knows every domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry

from crm import queue
from crm.campaigns.digest_routes import DigestController
from crm.campaigns.invitation_routes import InvitationController, RespondController
from crm.campaigns.routes import BounceWebhookController, CampaignController, TrackingController
from crm.celery_publisher import CeleryPublisher
from crm.config import Settings, get_settings
from crm.console.sections import CONTROLLERS as CONSOLE
from crm.contacts.routes import ContactController
from crm.contacts.suppression_routes import SuppressionController
from crm.content.routes import ContentController
from crm.deliverability.routes import DeliverabilityController
from crm.donations.routes import DonationInquiryController
from crm.emailtemplates.routes import TemplateController
from crm.forms.batch import GroupCommit
from crm.forms.routes import FormController, InterestController
from crm.health import health, ready
from crm.http import exception_handlers, ids_in_range
from crm.jobs.routes import JobController
from crm.journeys.routes import ContactJourneyController, JourneyController
from crm.mail import warn_if_unpatched_python
from crm.preferences.routes import (
    ConfirmController,
    LinkController,
    PreferencesApiController,
    PreferencesController,
    UnsubscribeController,
)
from crm.privacy import service as privacy
from crm.segments.routes import ContactExportController, SegmentController
from crm.staff.routes import AuditController, StaffController
from crm.volunteers.portal_routes import PortalApiController, PortalController
from crm.volunteers.routes import OpportunityController, VolunteerController
from crm.volunteers.shift_routes import HoursController, QualificationController, ShiftController
from crm.webhooks.routes import WebhookEndpointController

STATIC_DIR = Path(__file__).parent / "pages" / "static"
SWAGGER_ASSETS = "/static/vendor/swagger-ui"
# The staff routes carry this requirement, so the OpenAPI page shows an Authorize button for them.
BEARER = "BearerToken"
OUTBOX_WAKEUP_WINDOW = 0.05  # seconds: at most one outbox wake-up publish per window from the API


def _openapi_config() -> OpenAPIConfig:
    """The document at /schema/openapi.json; its page loads Swagger UI from the app, never from a CDN."""
    swagger = SwaggerRenderPlugin(
        path="/", js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js", css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>")
    scheme = SecurityScheme(type="http", scheme="bearer", description="a staff API token (`crm staff create`)")
    return OpenAPIConfig(title="Charity CRM", version="1.0.0", path="/schema", render_plugins=[swagger],
                         components=Components(security_schemes={BEARER: scheme}))


class FormRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter plus the Retry-After header a 429 should carry."""

    def create_response_headers(self, cache_object: Any) -> dict[str, str]:
        headers = super().create_response_headers(cache_object)
        reset = headers.get(self.config.rate_limit_reset_header_key)
        # Only the 429 says "retry after": a successful answer carrying it tells clients to wait.
        if reset is not None and len(cache_object.history) >= self.max_requests:
            headers["Retry-After"] = str(max(1, int(reset)))
        return headers


def stores_for(settings: Settings) -> StoreRegistry:
    """Rate-limit counters: shared through Redis when there is one, else this process's memory."""
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        root = RedisStore.with_client(url=settings.redis_url, namespace=settings.instance)
        return StoreRegistry(default_factory=root.with_namespace)
    return StoreRegistry(default_factory=lambda _name: MemoryStore())


def _privacy() -> Any:
    return privacy


def create_app(settings: Settings | None = None, publisher: queue.Publisher | None = None) -> Litestar:
    """The API; `publisher` (tests: a MemoryPublisher) replaces the Celery one for this process.

    Outbox wake-ups are coalesced (at most one per 50 ms, the last of a burst always sent): a burst
    of signups needs one worker wake-up per batch, not one broker round trip per signup."""
    settings = settings or get_settings()
    warn_if_unpatched_python()
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
    staff_api = Router(path="/", security=[{BEARER: []}], route_handlers=[
        ContactController, VolunteerController, OpportunityController, InvitationController, DonationInquiryController,
        CampaignController, SegmentController, ContactExportController, ContentController, DigestController,
        JobController, TemplateController, AuditController, StaffController, WebhookEndpointController,
        ShiftController, QualificationController, HoursController, JourneyController, ContactJourneyController,
        SuppressionController, DeliverabilityController,
    ])
    static = create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False)
    app = Litestar(
        route_handlers=[
            health, ready, InterestController, public_forms, ConfirmController,
            PreferencesController, PreferencesApiController, UnsubscribeController,
            RespondController, BounceWebhookController, TrackingController, staff_api, static,
            PortalController, PortalApiController,
            *CONSOLE,  # session cookie, not Bearer: outside staff_api
        ],
        cors_config=cors,
        guards=[ids_in_range],
        dependencies={"privacy": Provide(_privacy, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        openapi_config=_openapi_config(),
        debug=False,
    )
    return configure(app, settings, publisher)


def configure(app: Litestar, settings: Settings, publisher: queue.Publisher | None = None) -> Litestar:
    """What the app reads per request rather than while building its routes: settings, broker,
    rate-limit counters, the signup group. Tests give one built app each test's own."""
    queue.install(queue.CoalescingPublisher(publisher or CeleryPublisher(settings), window=OUTBOX_WAKEUP_WINDOW))
    settings.resolved_secret("secret_key")  # fail (or generate) at startup, not at the first email
    app.stores = stores_for(settings)
    app.state.settings = settings
    app.state.signup_group = GroupCommit(settings)  # newsletter posts arriving together share one commit
    return app
