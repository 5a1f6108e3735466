"""What a person reads instead of our codes, and dates and numbers in their language.

One mechanism for every email and public page (docs/email-wording.md):
- `label(kind, key, language)`: the label of a fixed code of the contract (areas, availability,
  inquiry types, lists, frequencies, roles, statuses). Staff-managed interests carry their own
  labels in the database; senders put those labels in the context (`topics`).
- `format_date` / `format_datetime` / `format_time` / `format_number`: Babel, in the person's
  language, datetimes in the charity's zone (CRM_TIMEZONE).
- `install(env)`: the same as Jinja2 filters (`|label("area")`, `|labels("area")`, `|date`,
  `|datetime`, `|time`, `|zone`, `|number`), which read `language` (and `timezone`) from the template context.
- `org_context(settings)`: the organisation's name, website, helpline and postal address, which every
  email footer and every page shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from babel.dates import get_timezone_name
from babel.lists import format_list
from babel.numbers import format_decimal
from jinja2 import Environment, Undefined, pass_context
from jinja2.runtime import Context

from crm.config import Settings

LABELS: dict[str, dict[str, tuple[str, str]]] = {  # kind -> key -> (English, Spanish)
    "area": {
        "transport-to-treatment": ("Driving patients to treatment", "Llevar pacientes a su tratamiento"),
        "lodging-support": ("Lodging support", "Apoyo con alojamiento"),
        "events": ("Events", "Eventos"),
        "peer-support": ("Peer support", "Apoyo entre pares"),
        "office": ("Office help", "Ayuda en la oficina"),
        "advocacy": ("Advocacy", "Defensoría"),
        "fundraising": ("Fundraising", "Recaudación de fondos"),
    },
    "availability": {
        "weekday-daytime": ("Weekdays, daytime", "Entre semana, de día"),
        "weekday-evenings": ("Weekday evenings", "Entre semana, por la tarde-noche"),
        "weekends": ("Weekends", "Fines de semana"),
    },
    "inquiry_type": {
        "one-time": ("A one-time gift", "Una donación única"),
        "monthly": ("Monthly giving", "Donaciones mensuales"),
        "tribute-memorial": ("A gift in honor or memory of someone", "Una donación en honor o en memoria de alguien"),
        "planned-giving": ("A gift in a will (planned giving)", "Un legado o donación planificada"),
        "corporate-matching": ("Employer gift matching", "Donaciones igualadas por la empresa"),
        "stock-or-daf": ("Stock or a donor-advised fund", "Acciones o un fondo asesorado por donantes"),
        "other": ("Another question about giving", "Otra pregunta sobre donaciones"),
    },
    "inquiry_status": {
        "new": ("New", "Nueva"), "assigned": ("Assigned", "Asignada"),
        "answered": ("Answered", "Respondida"), "closed": ("Closed", "Cerrada"),
    },
    "list": {
        "newsletter": ("Newsletter and content digest", "Boletín y resumen de artículos"),
        "volunteer-updates": ("Volunteering news and opportunities", "Noticias y oportunidades de voluntariado"),
        "donor-updates": ("News for donors", "Noticias para donantes"),
    },
    "frequency": {
        "weekly": ("Weekly", "Semanal"), "monthly": ("Monthly", "Mensual"), "never": ("Never (no digest)",
                                                                                     "Nunca (sin resumen)"),
    },
    "role": {
        "patient": ("Patient", "Paciente"), "caregiver": ("Caregiver", "Cuidador o cuidadora"),
        "family": ("Family member", "Familiar"), "survivor": ("Survivor", "Sobreviviente"),
        "professional": ("Health professional", "Profesional de la salud"),
        "supporter": ("Supporter", "Simpatizante"), "other": ("Other", "Otro"),
    },
    "volunteer_status": {
        "interested": ("Interested", "Interés recibido"), "contacted": ("Contacted", "Contacto hecho"),
        "onboarding": ("Getting started", "Primeros pasos"), "active": ("Active", "En activo"),
        "paused": ("Paused", "En pausa"), "inactive": ("No longer volunteering", "Ya no colabora"),
    },
    "language": {"en": ("English", "inglés"), "es": ("Spanish", "Español")},
}
_LANGUAGE_INDEX = {"en": 0, "es": 1}


class UnknownCode(KeyError):
    """A code with no label: rendering stops rather than show a person the raw key."""


def _lang(language: str | None) -> str:
    return language if language in _LANGUAGE_INDEX else "en"


def label(kind: str, key: str, language: str | None = "en") -> str:
    try:
        return LABELS[kind][key][_LANGUAGE_INDEX[_lang(language)]]
    except KeyError:
        raise UnknownCode(f"no {language} label for {kind} {key!r}") from None


def labels(kind: str, language: str | None = "en") -> dict[str, str]:
    """{key: label} for one kind, in a language: what a page's choices show."""
    return {key: label(kind, key, language) for key in LABELS[kind]}


def join(values: Iterable[str], language: str | None = "en") -> str:
    """`a, b and c` / `a, b y c`."""
    items = [v for v in values if v]
    return format_list(items, locale=_lang(language)) if items else ""


def _as_datetime(value: Any) -> dt.datetime | dt.date:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
    return value  # type: ignore[no-any-return]


def format_date(value: Any, language: str | None = "en", fmt: str = "long", timezone: str = "UTC") -> str:
    """`March 3, 2026` / `3 de marzo de 2026`; a datetime is taken to the charity's day first."""
    if not value:
        return ""
    when = _as_datetime(value)
    if isinstance(when, dt.datetime):
        when = _local(when, timezone).date()
    return babel_date(when, format=fmt, locale=_lang(language))


def format_datetime(value: Any, language: str | None = "en", timezone: str = "UTC", fmt: str = "long") -> str:
    """A moment as the charity's clock shows it: `March 3, 2026, 5:30 PM` / `3 de marzo de 2026, 17:30`."""
    if not value:
        return ""
    when = _as_datetime(value)
    if not isinstance(when, dt.datetime):
        return format_date(when, language, fmt)
    local = _local(when, timezone)
    lang = _lang(language)
    return f"{babel_date(local.date(), format=fmt, locale=lang)}, {babel_time(local, format='short', locale=lang)}"


def format_time(value: Any, language: str | None = "en", timezone: str = "UTC") -> str:
    if not value:
        return ""
    when = _as_datetime(value)
    if isinstance(when, dt.datetime):
        when = _local(when, timezone)
    return babel_time(when, format="short", locale=_lang(language))


def zone_name(value: Any, language: str | None = "en", timezone: str = "UTC") -> str:
    """The zone a local time is in, as people say it: `Eastern Daylight Time` / `hora de verano oriental`."""
    when = _as_datetime(value)
    if not isinstance(when, dt.datetime):
        return ""
    return get_timezone_name(_local(when, timezone), width="long", locale=_lang(language))


def format_number(value: float | int, language: str | None = "en") -> str:
    return format_decimal(value, locale=_lang(language))


def _local(when: dt.datetime, timezone: str) -> dt.datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # stored times are UTC
    return when.astimezone(ZoneInfo(timezone or "UTC"))


def org_context(settings: Settings) -> dict[str, str]:
    """The organisation as every footer and page shows it (CRM_ORG_*)."""
    website = (settings.org_website or "").strip()
    return {
        "name": settings.org_name,
        "website": website,
        "website_label": website.split("://", 1)[-1].rstrip("/") if website else "",
        "helpline": (settings.org_helpline or "").strip(),
        "helpline_tel": "".join(c for c in (settings.org_helpline or "") if c.isdigit() or c == "+"),
        "postal_address": settings.org_postal_address,
    }


# --- Jinja2 filters: the language (and zone) come from the template's own context -----------------

def _ctx_lang(ctx: Context) -> str:
    return _lang(ctx.get("language"))


def _ctx_zone(ctx: Context) -> str:
    return str(ctx.get("timezone") or "UTC")


@pass_context
def _label_filter(ctx: Context, key: str, kind: str) -> str:
    if isinstance(key, Undefined):  # a preview's placeholder ([name]); StrictUndefined raised already
        return str(key)
    return label(kind, key, _ctx_lang(ctx))


@pass_context
def _labels_filter(ctx: Context, keys: Iterable[str], kind: str) -> str:
    return join((label(kind, k, _ctx_lang(ctx)) for k in keys or ()), _ctx_lang(ctx))


@pass_context
def _join_filter(ctx: Context, values: Iterable[str]) -> str:
    return join(values or (), _ctx_lang(ctx))


@pass_context
def _date_filter(ctx: Context, value: Any, fmt: str = "long") -> str:
    return format_date(value, _ctx_lang(ctx), fmt, _ctx_zone(ctx))


@pass_context
def _datetime_filter(ctx: Context, value: Any, fmt: str = "long") -> str:
    return format_datetime(value, _ctx_lang(ctx), _ctx_zone(ctx), fmt)


@pass_context
def _time_filter(ctx: Context, value: Any) -> str:
    return format_time(value, _ctx_lang(ctx), _ctx_zone(ctx))


@pass_context
def _zone_filter(ctx: Context, value: Any) -> str:
    return zone_name(value, _ctx_lang(ctx), _ctx_zone(ctx))


@pass_context
def _number_filter(ctx: Context, value: float | int) -> str:
    return format_number(value, _ctx_lang(ctx))


def install(env: Environment) -> Environment:
    env.filters.update({"label": _label_filter, "labels": _labels_filter, "join_words": _join_filter,
                        "date": _date_filter, "datetime": _datetime_filter, "time": _time_filter, "zone": _zone_filter,
                        "number": _number_filter})
    return env
