"""Render once, personalise many: a campaign's email compiled once, then filled per recipient.

A template whose personal values (`contact.*`, `links.*`, per-kind extras) only ever appear as
plain `{{ contact.first_name }}` outputs is rendered ONCE per campaign and language with slot
markers in their place; CSS is inlined once on that result, which is then cut at the markers.
Each recipient costs a string join plus quoted-printable encoding (tens of microseconds).
A template that branches on a personal value (`{% if contact.first_name %}`, loops over a
digest's personal `items`) takes the exact path instead: a compiled Jinja render and CSS
inlining per recipient. Both paths produce the same bytes for the same person.

Digests (issue 6) have a third path between the two. Their file templates only branch on
`{% if contact.x %}` and reach the personal items through one partial, `_digest_items.*`, which
loops over `_digest_topic.*` and `_digest_item.*`. So a digest frame is rendered once per
language and truthiness of the branched fields with a slot where the partial goes; each topic
heading and each item is rendered (and CSS-inlined) once per run and language; a person costs
joining their cached fragments in the partial's order. Anything else takes the exact path.

Files: staff (the bounded sandbox), fastpath (which path), slots, digest_frame, person (links,
tracking), renderer (LanguageRenderer), wire (bytes and headers).
"""

from __future__ import annotations

from typing import Any

from crm.campaigns.compose.person import ExtrasFn, Links, Person, Rendered, Tracker
from crm.campaigns.compose.renderer import PERSON_NAMES, LanguageRenderer
from crm.campaigns.compose.staff import staff_template, text_from_html
from crm.campaigns.compose.wire import MessageBuilder, NonAsciiAddress, encode_subject
from crm.config import Settings
from crm.emailtemplates import service as emailtemplates
from crm.mail import LANGUAGES, CompiledEmail

__all__ = ["PERSON_NAMES", "ExtrasFn", "LanguageRenderer", "Links", "MessageBuilder", "NonAsciiAddress", "Person", "Rendered",
           "Tracker", "encode_subject", "language_for", "load_compiled", "staff_template", "text_from_html"]


def language_for(person_language: str, available: set[str]) -> str:
    return person_language if person_language in available and person_language in LANGUAGES else "en"


def load_compiled(settings: Settings, session: Any, key: str, language: str) -> CompiledEmail:
    """The templates API's version of `key` if staff wrote one, the files otherwise."""
    return emailtemplates.load(session, settings, key, language)
