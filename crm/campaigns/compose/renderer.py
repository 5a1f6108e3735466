"""One campaign in one language, ready for any number of people (the exact, fast and digest paths)."""

from __future__ import annotations

from typing import Any

import css_inline
from markupsafe import Markup, escape

from crm.campaigns.compose.digest_frame import CONTACT_FIELDS, DigestFrame
from crm.campaigns.compose.fastpath import source_substitution_only, substitution_only
from crm.campaigns.compose.person import ExtrasFn, Links, Person, Rendered, Tracker
from crm.campaigns.compose.slots import _Cut, _Slots
from crm.campaigns.compose.staff import staff_template, text_from_html
from crm.config import Settings
from crm.mail import CompiledEmail, base_context

# Names whose values differ per recipient. `items` joins them for digests (personal items).
PERSON_NAMES = frozenset({"contact", "links", "extra"})

class LanguageRenderer:
    """One campaign in one language: subject, HTML and text, ready for any number of people."""

    def __init__(self, settings: Settings, compiled: CompiledEmail, language: str, shared: dict[str, Any],
                 staff: dict[str, str | None], links: Links, tracker: Tracker, extras: ExtrasFn | None,
                 personal_items: bool) -> None:
        self.language = language
        self.links, self.tracker, self.extras = links, tracker, extras
        self.compiled = compiled
        self.shared = {**base_context(settings, language), **shared}
        self.personal = PERSON_NAMES | ({"items"} if personal_items else frozenset())
        self.staff = {
            "subject": staff_template(staff["subject"], html=False) if staff.get("subject") else None,
            "body_html": staff_template(staff["body_html"], html=True) if staff.get("body_html") else None,
            "body_text": staff_template(staff["body_text"], html=False) if staff.get("body_text") else None,
        }
        self.fast = (not personal_items
                     and all(source_substitution_only(staff.get(k), self.personal) for k in self.staff)
                     and all(substitution_only(t, self.personal)
                             for t in (compiled.subject, compiled.html, compiled.text)))
        self._cuts: tuple[_Cut, _Cut, _Cut] | None = None
        self.digest = (DigestFrame.build(compiled, self.personal) if personal_items and all(
            source_substitution_only(staff.get(k), self.personal) for k in self.staff) else None)

    # The exact path -------------------------------------------------------------------------
    def _context(self, person_ctx: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
        ctx = {**self.shared, **person_ctx, "extra": extra}
        ctx["links"] = {**person_ctx["links"], **extra}
        for key in ("subject", "body_html", "body_text"):
            tmpl = self.staff[key]
            if tmpl is None:
                value: Any = ctx.get(key, "")
            else:
                value = tmpl.render(ctx)
            ctx[key] = Markup(value) if key == "body_html" else value
        if self.staff["subject"] is None:
            ctx["subject"] = self.shared.get("campaign", {}).get("subject", "")
        if self.staff["body_text"] is None and self.staff["body_html"] is not None:
            ctx["body_text"] = text_from_html(str(ctx["body_html"]))
        return ctx

    def _exact(self, person: Person, person_ctx: dict[str, Any], extra: dict[str, str]) -> Rendered:
        ctx = self._context(person_ctx, extra)
        subject = " ".join(self.compiled.subject.render(ctx).split())
        html = css_inline.inline(self.compiled.html.render(ctx))
        text = self.compiled.text.render(ctx).strip() + "\n"
        return Rendered(subject, html, text)

    # The fast path --------------------------------------------------------------------------
    def _prepare(self, sample_extra: dict[str, str]) -> tuple[_Cut, _Cut, _Cut]:
        slots = _Slots()
        contact = {f: slots.slot(f"contact.{f}") for f in CONTACT_FIELDS}
        contact["language"] = self.language  # fixed per renderer, so it may be branched on
        links = {k: slots.slot(f"links.{k}") for k in ("preferences", "unsubscribe")}
        extra = {k: slots.slot(f"links.{k}") for k in sample_extra}
        ctx = self._context({"contact": contact, "links": links}, extra)
        subject = " ".join(self.compiled.subject.render(ctx).split())
        html = css_inline.inline(self.compiled.html.render(ctx))
        text = self.compiled.text.render(ctx).strip() + "\n"
        # Staff text derived from HTML may have escaped a slot's neighbours, never the slot itself.
        return _Cut(subject, slots), _Cut(html, slots), _Cut(text, slots)

    def _digest(self, person: Person, contact: dict[str, str], links: dict[str, str], extra: dict[str, str]
                ) -> Rendered:
        frame = self.digest
        assert frame is not None

        def render_ctx(slots: _Slots, slotted: dict[str, str]) -> dict[str, Any]:
            slotted["language"] = self.language
            own = {k: slots.slot(f"links.{k}") for k in ("preferences", "unsubscribe")}
            more = {k: slots.slot(f"links.{k}") for k in extra}
            return self._context({"contact": slotted, "links": own}, more)

        variant = tuple(bool(contact.get(name)) for name in frame.branches)
        subject_cut, html_cut, text_cut = frame.cut(variant, render_ctx)
        html_block, text_block = frame.block(person.items or [], self.shared)
        values = {f"contact.{k}": v for k, v in contact.items()}
        values.update({f"links.{k}": v for k, v in links.items()})
        values.update({f"links.{k}": v for k, v in extra.items()})
        html_values = {k: str(escape(v)) for k, v in values.items()}
        values["items"], html_values["items"] = text_block, html_block
        return Rendered(" ".join(subject_cut.fill(values).split()), html_cut.fill(html_values),
                        text_cut.fill(values))

    def render(self, person: Person, links: dict[str, str] | None = None) -> Rendered:
        """`links`: the person's signed links when the caller has them already (signed once per person)."""
        links = links if links is not None else self.links.person(person.contact_id)
        extra = self.extras(person) if self.extras else {}
        contact = {"first_name": person.first_name, "last_name": person.last_name, "email": person.email,
                   "language": person.language, "role": person.role or ""}
        if self.digest is not None and person.items is not None and set(contact) >= set(self.digest.branches):
            rendered = self._digest(person, contact, links, extra)
        elif not self.fast:
            person_ctx: dict[str, Any] = {"contact": contact, "links": links}
            if person.items is not None:
                person_ctx["items"] = person.items
            rendered = self._exact(person, person_ctx, extra)
        else:
            if self._cuts is None:
                self._cuts = self._prepare(extra)
            values = {f"contact.{k}": v for k, v in contact.items()}
            values.update({f"links.{k}": v for k, v in links.items()})
            values.update({f"links.{k}": v for k, v in extra.items()})
            subject_cut, html_cut, text_cut = self._cuts
            rendered = Rendered(" ".join(subject_cut.fill(values).split()),
                                html_cut.fill({k: str(escape(v)) for k, v in values.items()}),
                                text_cut.fill(values))
        if self.tracker.opens or self.tracker.clicks:
            own = tuple(links[k] for k in ("preferences", "unsubscribe"))
            rendered.html = self.tracker.apply(rendered.html, person, own)
        return rendered
