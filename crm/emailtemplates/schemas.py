"""The staff API's email-template request bodies (SPEC section 5); the service checks what they mean.

The members are typed but optional here: the service names every missing or bad member of a
template in one answer (the key, each source text, the language: `en` or `es`), which a schema
that stops at the first would not.
"""

from __future__ import annotations

import msgspec


class TemplateCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/templates: Jinja2 source text, parsed and rendered with a sample before it is saved."""

    key: str | msgspec.UnsetType = msgspec.UNSET  # required: 1-64 lower-case letters, digits and dashes
    subject: str | msgspec.UnsetType = msgspec.UNSET  # required, one line
    body_html: str | msgspec.UnsetType = msgspec.UNSET  # required
    body_text: str | msgspec.UnsetType = msgspec.UNSET  # required
    language: str = "en"  # en | es


class TemplateReplace(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PUT /api/v1/templates/{key}: the whole template; a `key` in the body must match the path."""

    key: str | None | msgspec.UnsetType = msgspec.UNSET
    subject: str | msgspec.UnsetType = msgspec.UNSET  # required, one line
    body_html: str | msgspec.UnsetType = msgspec.UNSET  # required
    body_text: str | msgspec.UnsetType = msgspec.UNSET  # required
    language: str = "en"  # en | es


class TemplatePreviewRequest(msgspec.Struct, kw_only=True):
    """POST /api/v1/templates/{key}/preview: render with that contact (and their language) or a sample person.

    Other members are ignored, as they always were.
    """

    contact_id: int | None = None
    language: str | None = None


class TemplateSummary(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    source: str  # database (edited by staff) or file (the shipped default)
    languages: list[str]
    file_default: bool  # a shipped file stands behind it
    updated_at: str | None


class TemplateList(msgspec.Struct):
    items: list[TemplateSummary]
    next_cursor: str | None


class TemplatePublic(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    source: str
    language: str
    subject: str
    body_html: str
    body_text: str
    updated_by: str | None
    updated_at: str | None


class TemplatePreview(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    subject: str
    html: str
    text: str
