"""Email templates: the files in templates/email/ are the defaults; staff may override or add in the database.

Staff-authored sources compile in Jinja2's SandboxedEnvironment (autoescaped HTML, StrictUndefined) whose
loader is the email folder, so they may `{% extends "_layout.html" %}`. Two resource checks keep a
template from hanging or exhausting the service: `*` and `**` are intercepted (no 10**10**10, no
"x" * 10**9; the sandbox already caps range() at 100 000), and every staff render done by this
module (save, preview) runs under a wall-clock deadline enforced by a trace hook, so nested loops
stop with a 422 instead of spinning. A template is render-checked with a sample context when
saved, so what reaches the campaign pipeline has rendered within the bound at least once.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import (
    ChainableUndefined,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from sqlalchemy import select
from sqlmodel import Session

from crm.bodies import present
from crm.config import Settings
from crm.contacts.models import Contact
from crm.db import utcnow
from crm.emailtemplates.models import EmailTemplate
from crm.emailtemplates.schemas import TemplateCreate, TemplatePreviewRequest, TemplateReplace
from crm.errors import Invalid, NotFound
from crm.mail import LANGUAGES, PARTS, CompiledEmail, base_context, compile_email, environment, template_files
from crm.mail.sandbox import RENDER_SECONDS, BoundedSandbox, bounded_render

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_SOURCE = 200_000


@lru_cache(maxsize=4)
def sandbox(templates_dir: str) -> SandboxedEnvironment:
    return BoundedSandbox(loader=FileSystemLoader(templates_dir), undefined=StrictUndefined,
                           autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                           trim_blocks=True, lstrip_blocks=True)


def _compile(settings: Settings, row: EmailTemplate) -> CompiledEmail:
    env = sandbox(str(settings.templates_dir))
    html_env = env.overlay(autoescape=True)
    return CompiledEmail(row.key, row.language, env.from_string(row.subject), html_env.from_string(row.body_html),
                         env.from_string(row.body_text))


def _row(session: Session | None, key: str, language: str) -> EmailTemplate | None:
    if session is None:
        return None
    rows = {t.language: t for t in session.scalars(select(EmailTemplate).where(EmailTemplate.key == key))}
    return rows.get(language) or rows.get("en")


def _file_keys(settings: Settings) -> set[str]:
    return set(template_files(settings.templates_dir))


def load(session: Session | None, settings: Settings, key: str, language: str = "en") -> CompiledEmail:
    """The email `key` in `language` (English fallback): the database version if staff wrote one, else the files.

    Raises NotFound for a key that is neither (the campaigns domain checks template names with this).
    """
    row = _row(session, key, language)
    if row is not None:
        return _compile(settings, row)
    if key not in _file_keys(settings):
        raise NotFound(f"no email template {key!r}")
    return compile_email(settings, key, language if language in LANGUAGES else "en")


# --- bounded rendering ------------------------------------------------------------------------


def render_bounded(compiled: CompiledEmail, context: dict[str, Any], seconds: float = RENDER_SECONDS) -> dict[str, str]:
    """Render with a deadline; any failure is an Invalid naming why (never an unhandled 500)."""
    out = bounded_render(lambda: compiled.render(context), "template", seconds)
    return {"subject": out.subject, "html": out.html, "text": out.text}


SAMPLE_CONTACT = {"first_name": "Alex", "last_name": "Sample", "email": "alex.sample@example.org",
                  "language": "en", "role": "caregiver"}


def sample_context(settings: Settings, contact: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a campaign or digest template sees (SPEC 7), with a sample person when none is named."""
    person = contact or SAMPLE_CONTACT
    base = settings.public_base_url
    items = [{"title": "Questions to Ask Your Doctor", "url": f"{base}/articles/questions-to-ask",
              "summary": "A checklist for your next appointment.", "topics": ["cancer-information"]},
             {"title": "Immunomodulators and Their Side Effects", "url": f"{base}/articles/immunomodulators",
              "summary": "What to expect and when to call your care team.",
              "topics": ["treatment-and-side-effects"]}]
    return {**base_context(settings, person.get("language") or "en"), "contact": person,
            "campaign": {"name": "Sample campaign", "subject": "News from the helpline"}, "items": items,
            "links": {"preferences": f"{base}/preferences/PREVIEW", "unsubscribe": f"{base}/unsubscribe/PREVIEW"},
            "subject": "News from the helpline", "body_html": Markup("<p>Campaign text goes here.</p>"),
            "body_text": "Campaign text goes here.", "extra": {}}


# --- CRUD -------------------------------------------------------------------------------------


def _parse(body: TemplateCreate | TemplateReplace | dict[str, Any], key: str | None) -> dict[str, Any]:
    """The schema has refused unknown fields and wrong JSON types; this checks the key and the sources."""
    data = present(body)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    raw_key = key if key is not None else data.get("key")
    if not isinstance(raw_key, str) or not KEY.match(raw_key):
        errors["key"] = "must be 1-64 lower-case letters, digits and dashes, starting with a letter or digit"
    elif key is not None and data.get("key") not in (None, key):
        errors["key"] = "does not match the key in the path"
    out["key"] = raw_key
    language = data.get("language", "en")
    if language not in LANGUAGES:
        errors["language"] = f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}"
    out["language"] = str(language)
    for name in ("subject", "body_html", "body_text"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = "is required (template source text)"
        elif len(value) > MAX_SOURCE:
            errors[name] = f"must be at most {MAX_SOURCE} characters"
        elif name == "subject" and ("\r" in value.strip() or "\n" in value.strip()):
            errors[name] = "must be one line (it becomes a header)"
        else:
            out[name] = value
    if not errors:
        env = sandbox(".")
        for name in ("subject", "body_html", "body_text"):
            try:
                env.parse(out[name])
            except TemplateError as exc:
                errors[name] = f"template syntax error: {exc}"
    if errors:
        raise Invalid("invalid template: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


TRANSACTIONAL_FILES = frozenset({"confirm", "welcome", "already-subscribed", "fresh-link", "volunteer-welcome",
                                 "volunteer-notice", "volunteer-status", "donation-ack", "donation-answer",
                                 "donation-notice", "donation-overdue-summary"})


def _check_renders(settings: Settings, row: EmailTemplate) -> None:
    """It must render a sample within the bound; a mailing template must keep what SPEC 7 requires."""
    try:
        compiled = _compile(settings, row)
    except TemplateError as exc:
        raise Invalid.field("template", f"failed to compile: {exc}") from None
    ctx = sample_context(settings)
    out = render_bounded(compiled, ctx)
    if row.key in TRANSACTIONAL_FILES:
        return
    # Any other key may be a campaign's or digest's template: people must always be able to leave.
    needed = {"links.unsubscribe": ctx["links"]["unsubscribe"], "links.preferences": ctx["links"]["preferences"],
              "org.postal_address": settings.org_postal_address}
    errors = {}
    for part in ("html", "text"):
        missing = [name for name, value in needed.items() if value not in out[part]]
        if missing:
            errors[f"body_{part}"] = (f"a campaign or digest template must show {', '.join(missing)} "
                                      "(extend _layout for the postal address)")
    if errors:
        raise Invalid("invalid template: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)


def save(session: Session, settings: Settings, data: TemplateCreate | TemplateReplace | dict[str, Any], staff_email: str, key: str | None = None,
         *, create_only: bool = False) -> EmailTemplate:
    """Create (POST) or replace (PUT) the database version of a template; it must render a sample first."""
    from crm.errors import Conflict

    fields = _parse(data, key)
    row = session.scalars(select(EmailTemplate).where(EmailTemplate.key == fields["key"],
                                                      EmailTemplate.language == fields["language"])).first()
    if row is not None and create_only:
        raise Conflict(f"template {fields['key']!r} ({fields['language']}) already exists; PUT changes it",
                       fields={"key": "already exists"})
    now = utcnow()
    candidate = EmailTemplate(**fields, updated_by=staff_email, created_at=now, updated_at=now)
    _check_renders(settings, candidate)
    if row is None:
        row = candidate
    else:
        for name in ("subject", "body_html", "body_text"):
            setattr(row, name, fields[name])
        row.updated_by, row.updated_at = staff_email, now
    session.add(row)
    session.flush()
    return row


def _file_sources(settings: Settings, key: str) -> dict[str, Any]:
    env = environment(str(settings.templates_dir))
    assert env.loader is not None
    src = {part: env.loader.get_source(env, f"{key}/{part}")[0] for part in PARTS}
    return {"key": key, "source": "file", "language": "en", "subject": src["subject.txt"].strip(),
            "body_html": src["body.html"], "body_text": src["body.txt"], "updated_by": None, "updated_at": None}


def template_dict(row: EmailTemplate) -> dict[str, Any]:
    return {"key": row.key, "source": "database", "language": row.language, "subject": row.subject,
            "body_html": row.body_html, "body_text": row.body_text, "updated_by": row.updated_by,
            "updated_at": row.updated_at.isoformat()}


def get(session: Session, settings: Settings, key: str, language: str = "en") -> dict[str, Any]:
    row = _row(session, key, language)
    if row is not None:
        return template_dict(row)
    if key not in _file_keys(settings):
        raise NotFound(f"no email template {key!r}")
    try:
        return _file_sources(settings, key)
    except TemplateNotFound:
        raise NotFound(f"email template {key!r} has no English files") from None


def list_all(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every key, database versions first: {key, source, languages, subject?}."""
    out: dict[str, dict[str, Any]] = {}
    for row in session.scalars(select(EmailTemplate).order_by(EmailTemplate.key, EmailTemplate.language)):
        entry = out.setdefault(row.key, {"key": row.key, "source": "database", "languages": [],
                                         "file_default": False, "updated_at": row.updated_at.isoformat()})
        entry["languages"].append(row.language)
    for key, langs in template_files(settings.templates_dir).items():
        if key in out:
            out[key]["file_default"] = True
        else:
            out[key] = {"key": key, "source": "file", "file_default": True, "updated_at": None,
                        "languages": sorted(lang for lang, parts in langs.items() if parts)}
    return [out[k] for k in sorted(out)]


def preview(session: Session, settings: Settings, key: str, data: TemplatePreviewRequest | None) -> dict[str, str]:
    """Render `key` with a named contact or the sample person."""
    data = data or TemplatePreviewRequest()
    contact_id = data.contact_id
    person = None
    language = data.language or "en"
    if contact_id is not None:
        contact = session.get(Contact, contact_id) if 0 < contact_id < 2**31 else None
        if contact is None or contact.status == "erased":
            raise NotFound(f"no contact {contact_id}")
        person = {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email or "",
                  "language": contact.language, "role": contact.role or ""}
        language = contact.language
    try:
        if _row(session, key, language) is not None:
            compiled = load(session, settings, key, language)
        else:
            compiled = _lenient_file(settings, key, language)
    except TemplateError as exc:
        raise Invalid.field("template", f"failed to compile: {exc}") from None
    return render_bounded(compiled, sample_context(settings, person))


class _Placeholder(ChainableUndefined):
    """In a preview of a built-in email, a value only its own sender provides shows as [name]."""

    def __str__(self) -> str:
        return f"[{self._undefined_name}]"

    __html__ = __str__


@lru_cache(maxsize=4)
def _preview_sandbox(templates_dir: str) -> SandboxedEnvironment:
    return BoundedSandbox(loader=FileSystemLoader(templates_dir), undefined=_Placeholder,
                           autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                           trim_blocks=True, lstrip_blocks=True)


def _lenient_file(settings: Settings, key: str, language: str) -> CompiledEmail:
    """A file template for preview: the built-in emails need context (a confirm link, an inquiry) that
    the sample cannot know, so their missing values render as placeholders instead of failing."""
    if key not in _file_keys(settings):
        raise NotFound(f"no email template {key!r}")
    env = _preview_sandbox(str(settings.templates_dir))
    lang = language if language in LANGUAGES else "en"
    parts = []
    for part in PARTS:
        stem, _, ext = part.rpartition(".")
        try:
            parts.append(env.get_template(f"{key}/{stem}.{lang}.{ext}" if lang != "en" else f"{key}/{part}"))
        except TemplateNotFound:
            parts.append(env.get_template(f"{key}/{part}"))
    return CompiledEmail(key, lang, *parts)



# --- the console's editor: unsaved sources, errors per field, delete ------------------------------

SOURCE_FIELDS = {"subject": "subject", "html": "body_html", "text": "body_text"}


def render_sources(session: Session, settings: Settings, data: dict[str, Any],
                   contact_id: int | None = None) -> dict[str, str]:
    """Render sources not saved yet (what the editor holds), as a contact or the sample person.

    Every part compiles and renders on its own under the deadline, so an error names the field it
    is in (subject, body_html, body_text); all of them at once, as an Invalid with those fields.
    """
    fields = _parse(data, None)
    person = _person(session, contact_id) if contact_id is not None else None
    env = sandbox(str(settings.templates_dir))
    envs = {"subject": env, "html": env.overlay(autoescape=True), "text": env}
    ctx = sample_context(settings, person)
    out: dict[str, str] = {}
    errors: dict[str, str] = {}
    for part, name in SOURCE_FIELDS.items():
        try:
            compiled = envs[part].from_string(fields[name])
            out[part] = bounded_render(lambda c=compiled: c.render(ctx), name)
        except TemplateError as exc:
            errors[name] = f"failed to compile: {exc}"
        except Invalid as exc:
            errors[name] = exc.fields.get(name, exc.message)
    if errors:
        raise Invalid("invalid template: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    out["subject"] = " ".join(out["subject"].split())
    return out


def _person(session: Session, contact_id: int) -> dict[str, Any]:
    contact = session.get(Contact, contact_id) if 0 < contact_id < 2**31 else None
    if contact is None or contact.status == "erased":
        raise NotFound(f"no contact {contact_id}")
    return {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email or "",
            "language": contact.language, "role": contact.role or ""}


def has_file_default(settings: Settings, key: str) -> bool:
    return key in _file_keys(settings)


def delete(session: Session, key: str, language: str) -> EmailTemplate:
    """Remove the database version of `key` in `language`; a built-in key falls back to its files."""
    row = session.scalars(select(EmailTemplate).where(EmailTemplate.key == key,
                                                      EmailTemplate.language == language)).first()
    if row is None:
        raise NotFound(f"no saved email template {key!r} ({language})")
    session.delete(row)
    session.flush()
    return row


def sources_in(session: Session, settings: Settings, key: str, language: str) -> dict[str, Any]:
    """What the editor opens: the saved version in `language`, else the files in `language` (English
    parts where a translation is missing), else the English saved version; NotFound for an unknown key."""
    row = session.scalars(select(EmailTemplate).where(EmailTemplate.key == key,
                                                      EmailTemplate.language == language)).first()
    if row is not None:
        return template_dict(row)
    if key not in _file_keys(settings) or language not in LANGUAGES:
        return get(session, settings, key, language)
    env = environment(str(settings.templates_dir))
    assert env.loader is not None
    src: dict[str, str] = {}
    for part in PARTS:
        stem, _, ext = part.rpartition(".")
        names = [f"{key}/{stem}.{language}.{ext}", f"{key}/{part}"] if language != "en" else [f"{key}/{part}"]
        for name in names:
            try:
                src[part] = env.loader.get_source(env, name)[0]
                break
            except TemplateNotFound:
                continue
    if len(src) < len(PARTS):
        raise NotFound(f"email template {key!r} has no files for {language}")
    return {"key": key, "source": "file", "language": language, "subject": src["subject.txt"].strip(),
            "body_html": src["body.html"], "body_text": src["body.txt"], "updated_by": None, "updated_at": None}
