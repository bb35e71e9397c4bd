"""The organisation's settings, ``/admin/settings`` (issue 15 item 10; admins only:
``Permission.SETTINGS``): organisation name, contact email, time zone, default language,
reminder schedule, receipts on/off and the month the season starts, stored by
``services.org_settings.OrgSettings`` over ``config.toml`` and audited.

The form comes back with every problem named next to its field (and in the error summary) and
nothing saved; a saved form redirects (303) with a notice. Next to each field the page says
where its value comes from and when a change takes effect (``org_settings.TAKES_EFFECT``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web
from babel.dates import get_month_names

from gateway.domain.accounts import Permission
from gateway.domain.errors import ValidationFailed
from gateway.domain.locales import NATIVE_NAMES, OFFERED
from gateway.services.org_settings import (
    CONSOLE_NOW,
    KEYS,
    NOW,
    TAKES_EFFECT,
    OrgValues,
    zone_names,
)
from gateway.web.console.base import (
    FormErrors,
    field,
    form_data,
    locale_of,
    redirect_to,
    render,
    require,
)
from gateway.web.keys import ORG_SETTINGS

routes = web.RouteTableDef()

# What a form field may hold at most before the service even looks at it.
MAX_FIELD: Final = 400


def _months(locale: str) -> list[tuple[int, str]]:
    names = get_month_names("wide", locale=locale.replace("-", "_"))
    return [(number, str(names[number])) for number in range(1, 13)]


def _form_values(values: OrgValues) -> dict[str, str]:
    """The stored values as the form shows them."""
    return {
        "org_name": values.org_name,
        "contact_email": values.contact_email,
        "timezone": values.timezone,
        "default_locale": values.default_locale,
        "reminder_schedule": values.reminder_schedule,
        "receipts": "on" if values.receipts else "off",
        "season_start": str(values.season_start),
    }


def _page(
    request: web.Request,
    form: Mapping[str, str],
    errors: FormErrors | None = None,
    *,
    status: int = 200,
) -> web.Response:
    org = request.config_dict[ORG_SETTINGS]
    view = org.view()
    locale = locale_of(request)
    context: dict[str, Any] = {
        "form": form,
        "errors": errors or FormErrors(),
        "stored": view.stored,
        "configured": _form_values(view.configured),
        "immediate": {key: TAKES_EFFECT[key] == NOW for key in KEYS},
        "console_now": {key: TAKES_EFFECT[key] == CONSOLE_NOW for key in KEYS},
        "locales": [(code, NATIVE_NAMES[code]) for code in OFFERED],
        "months": _months(locale),
        "zones": zone_names(),
    }
    return render(request, "console/settings.html", context, status=status)


@routes.get("/settings", name="console.settings")
async def settings_page(request: web.Request) -> web.Response:
    require(request, Permission.SETTINGS)
    values = await request.config_dict[ORG_SETTINGS].fresh()
    return _page(request, _form_values(values))


@routes.post("/settings", name="console.settings")
async def save_settings(request: web.Request) -> web.Response:
    who = require(request, Permission.SETTINGS)
    data = await form_data(request)
    # Every field of the form; one that is absent reads as empty (and is named if it may not be).
    submitted = {key: field(data, key, max_chars=MAX_FIELD) for key in KEYS}
    try:
        await request.config_dict[ORG_SETTINGS].update(submitted, actor=who.actor)
    except ValidationFailed as exc:
        errors = FormErrors.from_validation(exc, locale_of(request))
        return _page(request, submitted, errors, status=422)
    raise redirect_to(request, "console.settings", notice="settings_saved")
