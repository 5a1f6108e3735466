"""Digests' middle path: a frame rendered once per branch variant, items rendered once per run."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import css_inline
from jinja2 import ChoiceLoader, DictLoader

from crm.campaigns.compose.fastpath import _frame_branches, _template_sources, substitution_only
from crm.campaigns.compose.slots import _Cut, _Slots
from crm.mail import CompiledEmail

CONTACT_FIELDS = ("first_name", "last_name", "email", "language", "role")

DIGEST_PARTIALS = ("_digest_items.html", "_digest_items.txt")
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_DIGEST_SLOT = "_digest_items_slot"
BLOCKS_KEPT = 20_000  # joined item blocks kept per renderer (a few MB at most)


def _group_by_topic(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Jinja's `items|groupby("topic_position", default=10000)`: a stable sort, then runs of equal keys."""
    ordered = sorted(items, key=lambda i: i.get("topic_position", 10000))
    groups: list[list[dict[str, Any]]] = []
    last: Any = object()
    for item in ordered:
        key = item.get("topic_position", 10000)
        if not groups or key != last:
            groups.append([])
            last = key
        groups[-1].append(item)
    return groups


class DigestFrame:
    """A digest template as a frame (cut per truthiness of its `{% if contact.x %}`) plus item fragments.

    `build` returns None for anything it cannot prove equivalent to the exact render (staff-written
    templates from the database, personal names used any other way): those take the exact path.
    """

    def __init__(self, compiled: CompiledEmail, branches: tuple[str, ...]) -> None:
        self.compiled = compiled
        self.branches = branches
        env = compiled.html.environment
        assert env.loader is not None
        # The frame sees a slot where the items partial goes; everything else is the real template.
        slot = DictLoader({name: "{{ " + _DIGEST_SLOT + " }}" for name in DIGEST_PARTIALS})
        frame_env = env.overlay(loader=ChoiceLoader([slot, env.loader]), cache_size=0)
        assert compiled.html.name and compiled.text.name
        self.frame_html = frame_env.get_template(compiled.html.name)
        self.frame_text = frame_env.get_template(compiled.text.name)
        self.fragments = {(kind, ext): env.get_template(f"_digest_{kind}.{ext}")
                          for kind in ("topic", "item") for ext in ("html", "txt")}
        self.cuts: dict[tuple[bool, ...], tuple[_Cut, _Cut, _Cut]] = {}
        self.css: str | None = None
        self.items: dict[Any, tuple[str, str]] = {}
        self.topics: dict[str, tuple[str, str]] = {}
        self.blocks: dict[tuple[Any, ...], tuple[str, str]] = {}

    @classmethod
    def build(cls, compiled: CompiledEmail, personal: frozenset[str]) -> DigestFrame | None:
        branches: set[str] = set()
        for template in (compiled.html, compiled.text):
            env = template.environment
            if not template.name or env.loader is None:
                return None
            sources = _template_sources(env, template.name, set(DIGEST_PARTIALS))
            if sources is None:
                return None
            for src in sources:
                found = _frame_branches(env.parse(src), personal)
                if found is None:
                    return None
                branches |= found
        if not substitution_only(compiled.subject, personal):
            return None
        try:
            for kind in ("topic", "item"):
                for ext in ("html", "txt"):
                    compiled.html.environment.get_template(f"_digest_{kind}.{ext}")
        except Exception:  # noqa: BLE001 - no fragments to cache: the exact path
            return None
        return cls(compiled, tuple(sorted(branches)))

    def cut(self, variant: tuple[bool, ...], render_ctx: Callable[[_Slots, dict[str, str]], dict[str, Any]]
            ) -> tuple[_Cut, _Cut, _Cut]:
        if variant not in self.cuts:
            slots = _Slots()
            falsy = {name for name, truthy in zip(self.branches, variant, strict=True) if not truthy}
            contact = {f: "" if f in falsy else slots.slot(f"contact.{f}") for f in CONTACT_FIELDS}
            ctx = render_ctx(slots, contact)
            ctx[_DIGEST_SLOT] = slots.slot("items")
            subject = " ".join(self.compiled.subject.render(ctx).split())
            html = self.frame_html.render(ctx)
            if self.css is None:
                self.css = "\n".join(_STYLE.findall(html))
            text = self.frame_text.render(ctx).strip() + "\n"
            self.cuts[variant] = (_Cut(subject, slots), _Cut(css_inline.inline(html), slots), _Cut(text, slots))
        return self.cuts[variant]

    def _fragment(self, kind: str, ctx: dict[str, Any]) -> tuple[str, str]:
        html = self.fragments[(kind, "html")].render(ctx)
        return (css_inline.inline_fragment(html, self.css or "") if self.css else html,
                self.fragments[(kind, "txt")].render(ctx))

    def block(self, items: list[dict[str, Any]], shared: dict[str, Any]) -> tuple[str, str]:
        """The items partial's output for these items, from fragments rendered once per run.

        Readers with the same interests and language get the same items: whole blocks are kept too.
        """
        key = tuple(item.get("id") for item in items)
        cached = self.blocks.get(key) if None not in key else None
        if cached is None:
            cached = self._block(items, shared)
            if None not in key:
                if len(self.blocks) >= BLOCKS_KEPT:
                    self.blocks.clear()
                self.blocks[key] = cached
        return cached

    def _block(self, items: list[dict[str, Any]], shared: dict[str, Any]) -> tuple[str, str]:
        html: list[str] = []
        text: list[str] = []
        for group in _group_by_topic(items):
            label = group[0].get("topic_label")
            heading = self.topics.get(label) if isinstance(label, str) else None
            if heading is None:
                heading = self._fragment("topic", {**shared, "group": {"list": group}, "other_topic": ""})
                if isinstance(label, str):
                    self.topics[label] = heading
            html += (heading[0], "\n")
            text += (heading[1], "\n")
            for item in group:
                key = item.get("id")
                fragment = self.items.get(key) if key is not None else None
                if fragment is None:
                    fragment = self._fragment("item", {**shared, "item": item})
                    if key is not None:
                        self.items[key] = fragment
                html += (fragment[0], "\n")
                text.append(fragment[1])
        return "".join(html), "".join(text)
