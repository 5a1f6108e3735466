"""The one sandbox every staff-authored template renders in (email templates, campaign subjects
and bodies, translations): bounded in CPU, memory and output.

Jinja2's SandboxedEnvironment blocks unsafe attributes and caps range(), but a template can
still ask one C call for a gigabyte (`'x'.ljust(10**9)`, `'%099999999d' % 1`, `|indent(10**9)`)
or for a number with ten million digits (`7 ** 10000000` holds the GIL, so it freezes every
thread, the event loop serving public pages too). Each such route is checked BEFORE the work
runs: powers and products of integers by their bit length, every operation that builds a string
or list by the size it would have, width-like arguments of str methods and filters, format specs.
The environment is immutable (no `list.append` / `dict.update` to grow values in a loop) and
`namespace()` refuses oversized values. Output is collected chunk by chunk and stops at
MAX_OUTPUT; `bounded_render` also stops a render after a wall-clock deadline (a trace hook in the
rendering thread), for the renders done while a staff member waits (save, preview, test).
"""

from __future__ import annotations

import re
import string
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

from crm.errors import Invalid
from crm.mail import wording

MAX_OUTPUT = 2_000_000  # characters one template may produce
MAX_SIZE = 200_000  # characters (or items) one operation may build
MAX_BITS = 4096  # an integer a template builds: 1,233 decimal digits
MAX_WIDTH = 1_000  # width/indent/padding arguments
RENDER_SECONDS = 2.0

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


class TemplateLimit(SecurityError):
    """A template asked for more than a template may have."""


class RenderTimeout(Exception):
    pass


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 8
    try:
        return len(value)
    except TypeError:
        return 0


def _check_size(n: int, what: str) -> None:
    if n > MAX_SIZE:
        raise TemplateLimit(f"{what} would build {n:,} characters; a template may build at most {MAX_SIZE:,}")


def _check_width(n: Any, what: str) -> None:
    if isinstance(n, int) and abs(n) > MAX_WIDTH:
        raise TemplateLimit(f"{what} of {n:,} is too large for a template (at most {MAX_WIDTH:,})")


def _check_int(bits: int, what: str) -> None:
    if bits > MAX_BITS:
        raise TemplateLimit(f"{what} makes a number too large for a template")


def check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise TemplateLimit("'*' widths in % formats are not allowed in templates")
            if part is not None:
                _check_width(int(part), "a % format width")


def check_brace_format(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise TemplateLimit(f"bad format string: {exc}") from None
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise TemplateLimit("nested {} in a format spec are not allowed in templates")
        for number in re.findall(r"\d+", spec or ""):
            _check_width(int(number), "a format width")


def _binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > 1000 and not (isinstance(left, int) and abs(left) <= 1):
            raise TemplateLimit(f"exponent {right} is too large for a template")
        if ints and right > 0:
            _check_int(max(1, abs(left).bit_length()) * right, "that power")
    elif operator == "*":
        if ints:
            _check_int(abs(left).bit_length() + abs(right).bit_length(), "that product")
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and not isinstance(seq, int | float):
                _check_size(_size(seq) * times, "that repetition")
    elif operator == "+" and not ints:
        _check_size(_size(left) + _size(right), "that concatenation")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left)
    elif operator in ("//", "/", "%", "-") and ints:
        _check_int(max(abs(left).bit_length(), abs(right).bit_length()) + 1, "that arithmetic")


def _method_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    values = [*args, *kwargs.values()]
    if name in _WIDTH_METHODS or name == "expandtabs":
        for value in values[:1]:
            _check_width(value, f"str.{name}")
        if name == "expandtabs":
            _check_size(len(owner) * (int(values[0]) if values and isinstance(values[0], int) else 8), name)
    elif name == "replace" and len(values) >= 2:
        old, new = str(values[0]), str(values[1])
        hits = owner.count(old) if old else len(owner) + 1
        _check_size(len(owner) + hits * max(0, len(new) - len(old)), "str.replace")
    elif name == "join" and values:
        items = values[0]
        _check_size(_size(items) * (len(owner) + 1) + sum(_size(i) for i in _peek(items)), "str.join")
    elif name in ("format", "format_map"):
        check_brace_format(owner)


def _peek(items: Any) -> list[Any]:
    return list(items) if isinstance(items, list | tuple | str) else []


class BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past the limits inside a loop."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_int(value.bit_length(), "that value")
        else:
            _check_size(_size(value), "that value")
        super().__setitem__(name, value)


def _bounded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Wrap the built-in filters that can build large values from small input."""
    out = dict(filters)
    base = dict(filters)

    def center(value: Any, width: int = 80) -> Any:
        _check_width(width, "center width")
        return base["center"](value, width)

    def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> Any:
        pad = width if isinstance(width, int) else len(str(width))
        _check_width(pad, "indent width")
        _check_size(len(str(value)) + (str(value).count("\n") + 1) * pad, "indent")
        return base["indent"](value, width, first, blank)

    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        check_percent_format(str(value))
        return base["format"](value, *args, **kwargs)

    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
        text, o, n = str(s), str(old), str(new)
        hits = text.count(o) if o else len(text) + 1
        _check_size(len(text) + min(hits, count if count is not None and count >= 0 else hits)
                    * max(0, len(n) - len(o)), "replace")
        return base["replace"](eval_ctx, s, old, new, count)

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        _check_size(len(items) * (len(str(d)) + 1), "join")
        return base["join"](eval_ctx, items, d, attribute)

    def wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True,
                 wrapstring: str | None = None, break_on_hyphens: bool = True) -> Any:
        _check_size(len(str(s)) * (1 + len(wrapstring or "\n")), "wordwrap")
        return base["wordwrap"](environment, s, width, break_long_words, wrapstring, break_on_hyphens)

    def truncate(environment: Any, s: str, length: int = 255, killwords: bool = False, end: str = "...",
                 leeway: int | None = None) -> Any:
        _check_size(len(str(end)), "truncate end")
        return base["truncate"](environment, s, length, killwords, end, leeway)

    for name, fn in (("replace", replace), ("join", join), ("wordwrap", wordwrap), ("truncate", truncate)):
        fn.jinja_pass_arg = base[name].jinja_pass_arg  # type: ignore[attr-defined]  # eval context / environment
    out.update(center=center, indent=indent, format=format_, replace=replace, join=join, wordwrap=wordwrap,
               truncate=truncate)
    return out


class BoundedTemplate(Template):
    """Collects output chunk by chunk: stops at MAX_OUTPUT instead of after building it."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        ctx = self.new_context(dict(*args, **kwargs))
        total = 0
        out: list[str] = []
        try:
            for chunk in self.root_render_func(ctx):
                total += len(chunk)
                if total > MAX_OUTPUT:
                    raise TemplateLimit(f"the template produces more than {MAX_OUTPUT:,} characters")
                out.append(chunk)
        except Exception:  # noqa: BLE001 - re-raised with Jinja's template traceback rewriting
            self.environment.handle_exception()
        return self.environment.concat(out)  # type: ignore[attr-defined,no-any-return]


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every size-building operation checked first."""

    intercepted_binops = frozenset({"*", "**", "+", "-", "/", "//", "%"})
    intercepted_unops = frozenset()
    template_class = BoundedTemplate

    def __init__(self, **options: Any) -> None:
        options.setdefault("undefined", StrictUndefined)
        super().__init__(**options)
        self.filters = _bounded_filters(self.filters)
        self.globals["namespace"] = BoundedNamespace
        wording.install(self)  # staff templates show labels and dates the way file templates do

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _method_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def format_string(self, s: str, args: tuple[Any, ...], kwargs: dict[str, Any], format_func: Any = None) -> str:
        check_brace_format(s)
        return super().format_string(s, args, kwargs, format_func)  # type: ignore[arg-type]


# --- rendering while someone waits ------------------------------------------------------------


class _Deadline:
    """A trace hook for the current thread: raises RenderTimeout once the render has used `seconds`
    of this thread's CPU time. CPU, not wall-clock: a runaway template burns CPU, while an honest one
    on a busy machine (or behind other threads holding the interpreter) only waits, and must not be
    refused for it. The clock is read every 32nd event; it is a system call."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.thread_time() + seconds
        self.events = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> Any:
        self.events += 1
        if not self.events & 31 and time.thread_time() > self.deadline:
            raise RenderTimeout
        return self

    def __enter__(self) -> None:
        self.previous = sys.gettrace()
        sys.settrace(self)

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self.previous)


def bounded_render(render: Callable[[], Any], what: str = "template", seconds: float = RENDER_SECONDS) -> Any:
    """Run `render()` under the deadline; any failure is an Invalid (400) naming `what` and why."""
    try:
        with _Deadline(seconds):
            return render()
    except RenderTimeout:
        raise Invalid.field(what, f"took longer than {seconds:g}s to render (a loop too large?)") from None
    except SecurityError as exc:
        raise Invalid.field(what, f"unsafe or too large: {exc}") from None
    except TemplateError as exc:
        raise Invalid.field(what, f"failed to render: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError, RecursionError,
            MemoryError, OverflowError) as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid.field(what, f"failed to render: {type(exc).__name__}: {exc}") from None
