"""Campaigns in the console: list, composer, preview and test, schedule, confirmed launch, live progress.

Every action calls the same service function the API's route does (crm.campaigns.service), so
validation, the lifecycle's legal moves and the test-send rules are the API's. Digests and
volunteer invitations are campaigns of other kinds and are not listed here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect

from crm.campaigns import overview, proofs, service
from crm.campaigns.models import Campaign, CampaignKind, CampaignState
from crm.console import campaign_forms as forms
from crm.console import navigation
from crm.console.render import render
from crm.console.web import (
    HEADERS,
    PAGE_SIZE,
    ConsoleSection,
    Form,
    can,
    check_csrf,
    console_editor,
    console_viewer,
    page,
    signed_in,
    staff_email,
)
from crm.contacts.models import Contact
from crm.contacts.schemas import contacts_public
from crm.contacts.search import ContactFilters, search
from crm.db import session_scope
from crm.errors import Conflict, Invalid, NotFound
from crm.http import decode_id_cursor, encode_cursor, settings_of
from crm.mail import PermanentMailError, TransientMailError
from crm.segments.models import Segment
from crm.staff.models import StaffRole

Req = Request[Any, Any, Any]
S = CampaignState
BASE = "/staff/campaigns"
LIVE = (S.scheduled, S.sending)  # states whose page keeps refreshing itself
NOTICES = {"created": "Campaign saved as a draft.", "saved": "Changes saved.", "scheduled": "Campaign scheduled.",
           "launched": "Campaign launched: sending has started.", "paused": "Sending paused.",
           "resumed": "Sending resumed.", "cancelled": "Campaign cancelled.",
           "tested": "Test email sent. Check the staff inbox."}
SEARCH_LIMIT = 10


def _conflict(request: Req, exc: Conflict) -> Response[str]:
    return page(request, "error.html", status_code=409, title="Not possible now", heading="Not possible now",
                message=exc.message)


def _invalid(request: Req, exc: Invalid) -> Response[str]:
    return page(request, "error.html", status_code=400, title="Not possible", heading="Not possible",
                message=exc.message)


def _signed_out(request: Req, exc: NotAuthorizedException) -> Response[Any]:
    """A poll after the session ended: htmx follows HX-Redirect to the sign-in page (and back to the
    campaign after it) instead of swapping the sign-in page into the panel."""
    if request.headers.get("hx-request") != "true":
        return ConsoleSection.exception_handlers[NotAuthorizedException](request, exc)  # type: ignore[no-any-return,operator]
    back = navigation.safe_next(urlsplit(request.headers.get("hx-current-url", "")).path or BASE)
    return Response("", status_code=401, headers={"HX-Redirect": f"{navigation.LOGIN}?next={quote(back, safe='')}"})


def _campaign(session: Any, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.kind != CampaignKind.campaign:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def _done(campaign_id: int, notice: str, extra: str = "") -> Redirect:
    return Redirect(f"{BASE}/{campaign_id}{extra}?done={notice}", status_code=303)


def _status(session: Any, settings: Any, campaign: Campaign) -> dict[str, Any]:
    """The live part of a campaign's page: state, the moves it allows now, figures."""
    assert campaign.id is not None
    return {"c": campaign, "state_label": forms.STATE_LABELS.get(campaign.state, campaign.state),
            "stats": service.stats(session, campaign.id), "rate": overview.rate_per_minute(session, campaign.id),
            "live": campaign.state in LIVE, "editable": campaign.state in service.EDITABLE_IN,
            "when": forms.formatter(settings.timezone), "zone": settings.timezone}


def _detail(session: Any, settings: Any, campaign_id: int, **extra: Any) -> dict[str, Any]:
    campaign = _campaign(session, campaign_id)
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    titles = dict(zip(campaign.content_ids or [], forms.content_titles(session, campaign.content_ids), strict=False))
    return {**_status(session, settings, campaign), "segment_name": segment.name if segment else None,
            "list_label": forms.LIST_LABELS.get(campaign.list, campaign.list), "titles": titles,
            "spanish": bool((campaign.translations or {}).get("es")), "title": campaign.name, "notice": None,
            "errors": {}, "send_at": "", **extra}


def _composer(request: Req, campaign: Campaign | None, values: dict[str, Any], errors: dict[str, str],
              status_code: int = 200) -> Response[str]:
    with session_scope(settings_of(request)) as session:
        options = forms.choices(session, settings_of(request), values)
    title = f"Edit {campaign.name}" if campaign else "New campaign"
    return page(request, "campaigns/compose.html", status_code=status_code, title=title, campaign=campaign,
                v=values, errors=errors, **options)


class CampaignPages(ConsoleSection):
    exception_handlers = {**ConsoleSection.exception_handlers, Conflict: _conflict, Invalid: _invalid,
                          NotAuthorizedException: _signed_out}

    @get("/campaigns", guards=[console_viewer], sync_to_thread=True)
    def campaign_list(self, request: Req, after: str | None = None) -> Response[str]:
        try:
            after_id = decode_id_cursor(after)
        except Invalid:  # a mangled paging link starts from the top
            after_id = None
        with session_scope(settings_of(request)) as session:
            rows, more, progress = overview.list_page(session, after_id, PAGE_SIZE)
        return page(request, "campaigns/list.html", title="Campaigns", items=rows, progress=progress,
                    labels=forms.STATE_LABELS, when=forms.formatter(settings_of(request).timezone),
                    next_cursor=encode_cursor(rows[-1].id) if more and rows else None)

    @get("/campaigns/new", guards=[console_editor], sync_to_thread=True)
    def new_form(self, request: Req) -> Response[str]:
        return _composer(request, None, forms.values_of(None), {})

    @post("/campaigns/new", guards=[console_editor], sync_to_thread=True)
    def create(self, request: Req, data: Form) -> Response[Any]:
        check_csrf(request, data)
        try:
            with session_scope(settings_of(request)) as session:
                campaign = service.create(session, settings_of(request), forms.body_of(data), staff_email(request))
                campaign_id = campaign.id
        except Invalid as exc:
            return _composer(request, None, forms.posted_values(data), forms.field_errors(exc), 400)
        return _done(campaign_id, "created")  # type: ignore[arg-type]

    @get("/campaigns/{campaign_id:int}", guards=[console_viewer], sync_to_thread=True)
    def detail(self, request: Req, campaign_id: int, done: str | None = None) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            ctx = _detail(session, settings_of(request), campaign_id, notice=NOTICES.get(done or ""))
        return page(request, "campaigns/detail.html", **ctx)

    @get("/campaigns/{campaign_id:int}/progress", guards=[console_viewer], sync_to_thread=True)
    def progress(self, request: Req, campaign_id: int) -> Response[str]:
        """The live panel alone, for htmx polling; once done it no longer asks to be polled."""
        with session_scope(settings_of(request)) as session:
            ctx = _status(session, settings_of(request), _campaign(session, campaign_id))
        html = render("campaigns/_status.html", {**ctx, "can_edit": can(request, StaffRole.editor),
                                                 "csrf_token": signed_in(request).csrf_token})  # type: ignore[union-attr]
        return Response(html, media_type="text/html", headers=HEADERS)

    @get("/campaigns/{campaign_id:int}/edit", guards=[console_editor], sync_to_thread=True)
    def edit_form(self, request: Req, campaign_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            campaign = _campaign(session, campaign_id)
        if campaign.state not in service.EDITABLE_IN:
            raise Conflict(f"a {forms.STATE_LABELS[campaign.state].lower()} campaign can no longer be changed")
        return _composer(request, campaign, forms.values_of(campaign), {})

    @post("/campaigns/{campaign_id:int}/edit", guards=[console_editor], sync_to_thread=True)
    def edit(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        try:
            with session_scope(settings_of(request)) as session:
                _campaign(session, campaign_id)
                service.change(session, settings_of(request), campaign_id, forms.body_of(data))
        except Invalid as exc:
            with session_scope(settings_of(request)) as session:
                campaign = _campaign(session, campaign_id)
            return _composer(request, campaign, forms.posted_values(data), forms.field_errors(exc), 400)
        return _done(campaign_id, "saved")

    @get("/campaigns/{campaign_id:int}/preview", guards=[console_viewer], sync_to_thread=True)
    def preview(self, request: Req, campaign_id: int, contact_id: int | None = None, q: str | None = None,
                done: str | None = None) -> Response[str]:
        return _preview_page(request, campaign_id, contact_id, q, notice=NOTICES.get(done or ""))

    @post("/campaigns/{campaign_id:int}/test", guards=[console_editor], sync_to_thread=True)
    def test_send(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        contact_id = int(data["contact_id"]) if data.get("contact_id", "").isdigit() else None
        body = {"emails": [e for e in data.get("emails", "").replace(",", " ").split() if e], "contact_id": contact_id}
        try:
            with session_scope(settings_of(request)) as session:
                _campaign(session, campaign_id)
                proofs.send_test(session, settings_of(request), campaign_id, body, staff_email=staff_email(request))
        except Invalid as exc:
            return _preview_page(request, campaign_id, contact_id, None, status_code=400, emails=data.get("emails", ""),
                                 errors={"emails": (exc.fields or {}).get("emails") or exc.message})
        except (TransientMailError, PermanentMailError, OSError) as exc:
            return _preview_page(request, campaign_id, contact_id, None, status_code=502, emails=data.get("emails", ""),
                                 errors={"emails": f"the mail server did not take it: {exc}"})
        return Redirect(f"{BASE}/{campaign_id}/preview?{_contact_query(contact_id)}done=tested", status_code=303)

    @post("/campaigns/{campaign_id:int}/schedule", guards=[console_editor], sync_to_thread=True)
    def schedule(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        check_csrf(request, data)
        settings = settings_of(request)
        try:
            with session_scope(settings) as session:
                _campaign(session, campaign_id)
                service.schedule(session, campaign_id, {"send_at": forms.send_at_of(data.get("send_at"),
                                                                                   settings.timezone)})
        except Invalid as exc:
            with session_scope(settings) as session:
                ctx = _detail(session, settings, campaign_id, send_at=data.get("send_at", ""),
                              errors={"send_at": (exc.fields or {}).get("send_at") or exc.message})
            return page(request, "campaigns/detail.html", status_code=400, **ctx)
        return _done(campaign_id, "scheduled")

    @get("/campaigns/{campaign_id:int}/launch", guards=[console_editor], sync_to_thread=True)
    def launch_confirm(self, request: Req, campaign_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            ctx = _detail(session, settings_of(request), campaign_id)
            n = overview.audience_size(session, ctx["c"])
        heading = f"Send to {forms.people(n)}?" if n else "Nobody would receive this campaign"
        return page(request, "campaigns/launch.html", **{**ctx, "title": heading}, heading=heading, audience=n)

    @post("/campaigns/{campaign_id:int}/launch", guards=[console_editor], sync_to_thread=True)
    def launch(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        return _act(request, campaign_id, data, "launched",
                    lambda s: service.launch(s, settings_of(request), campaign_id))

    @post("/campaigns/{campaign_id:int}/pause", guards=[console_editor], sync_to_thread=True)
    def pause(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        return _act(request, campaign_id, data, "paused", lambda s: service.pause(s, campaign_id))

    @post("/campaigns/{campaign_id:int}/resume", guards=[console_editor], sync_to_thread=True)
    def resume(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        return _act(request, campaign_id, data, "resumed", lambda s: service.resume(s, campaign_id))

    @get("/campaigns/{campaign_id:int}/cancel", guards=[console_editor], sync_to_thread=True)
    def cancel_confirm(self, request: Req, campaign_id: int) -> Response[str]:
        with session_scope(settings_of(request)) as session:
            ctx = _detail(session, settings_of(request), campaign_id)
        heading = f"Cancel {ctx['c'].name} for good?"
        return page(request, "campaigns/cancel.html", **{**ctx, "title": heading}, heading=heading)

    @post("/campaigns/{campaign_id:int}/cancel", guards=[console_editor], sync_to_thread=True)
    def cancel(self, request: Req, campaign_id: int, data: Form) -> Response[Any]:
        return _act(request, campaign_id, data, "cancelled", lambda s: service.cancel(s, campaign_id))


def _act(request: Req, campaign_id: int, data: dict[str, str], notice: str, move: Any) -> Response[Any]:
    """One lifecycle move, as the API's route makes it; an illegal one is a 409 page naming both states."""
    check_csrf(request, data)
    with session_scope(settings_of(request)) as session:
        _campaign(session, campaign_id)
        move(session)
    return _done(campaign_id, notice)


def _contact_query(contact_id: int | None) -> str:
    return f"contact_id={contact_id}&" if contact_id is not None else ""


def _preview_page(request: Req, campaign_id: int, contact_id: int | None, q: str | None, *, status_code: int = 200,
                  notice: str | None = None, emails: str | None = None, errors: dict[str, str] | None = None
                  ) -> Response[str]:
    """The campaign as a chosen contact (or the sample person) in both languages, and the test form."""
    settings = settings_of(request)
    q = (q or "").strip()[:200] or None
    with session_scope(settings) as session:
        campaign = _campaign(session, campaign_id)
        versions = overview.preview(session, settings, campaign_id, contact_id, staff_email(request))
        chosen = contacts_public(session, [session.get_one(Contact, contact_id)])[0] if contact_id else None
        found = contacts_public(session, search(session, ContactFilters(q=q), None,
                                                SEARCH_LIMIT)[0]) if q else []
    return page(request, "campaigns/preview.html", status_code=status_code, title=f"Preview {campaign.name}",
                c=campaign, versions=versions, chosen=chosen, q=q or "", found=found, notice=notice,
                emails=staff_email(request) if emails is None else emails, errors=errors or {})
