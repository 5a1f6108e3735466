"""Deciding the fast path: does a template use personal values only as plain `{{ name.attr }}` outputs?"""

from __future__ import annotations

from jinja2 import Environment, Template, meta, nodes

from crm.campaigns.compose.staff import STAFF_SANDBOX


def _plain_outputs_only(tree: nodes.Node, personal: frozenset[str]) -> bool:
    """True when every use of a personal name is `{{ name.attr }}` directly inside an output."""

    def walk(node: nodes.Node, parent: nodes.Node | None) -> bool:
        if isinstance(node, nodes.Name) and node.name in personal:
            return False
        for child in node.iter_child_nodes():
            if (isinstance(node, nodes.Output) and isinstance(child, nodes.Getattr)
                    and isinstance(child.node, nodes.Name) and child.node.name in personal):
                continue
            if not walk(child, node):
                return False
        return True

    return walk(tree, None)


def _template_sources(env: Environment, name: str, seen: set[str]) -> list[str] | None:
    if name in seen:
        return []
    seen.add(name)
    if env.loader is None:
        return None
    try:
        source, _, _ = env.loader.get_source(env, name)
    except Exception:  # noqa: BLE001 - unknown origin: take the exact path
        return None
    out = [source]
    for ref in meta.find_referenced_templates(env.parse(source)):
        if ref is None:
            return None
        more = _template_sources(env, ref, seen)
        if more is None:
            return None
        out += more
    return out


def substitution_only(template: Template, personal: frozenset[str]) -> bool:
    env = template.environment
    if not template.name:
        return False
    sources = _template_sources(env, template.name, set())
    if sources is None:
        return False
    return all(_plain_outputs_only(env.parse(src), personal) for src in sources)


def _frame_branches(tree: nodes.Node, personal: frozenset[str]) -> set[str] | None:
    """The `contact.x` a digest frame branches on, if personal names are otherwise plain outputs only."""
    branches: set[str] = set()

    def walk(node: nodes.Node) -> bool:
        if isinstance(node, nodes.Name) and node.name in personal:
            return False
        if (isinstance(node, nodes.If) and isinstance(node.test, nodes.Getattr)
                and isinstance(node.test.node, nodes.Name) and node.test.node.name == "contact"):
            branches.add(node.test.attr)
            return all(walk(child) for child in [*node.body, *node.elif_, *node.else_])
        for child in node.iter_child_nodes():
            if (isinstance(node, nodes.Output) and isinstance(child, nodes.Getattr)
                    and isinstance(child.node, nodes.Name) and child.node.name in personal):
                continue
            if not walk(child):
                return False
        return True

    return branches if walk(tree) else None


def source_substitution_only(source: str | None, personal: frozenset[str]) -> bool:
    return source is None or _plain_outputs_only(STAFF_SANDBOX.parse(source), personal)
