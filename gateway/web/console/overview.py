"""The console's home, ``/admin/`` (issue 15 item 6): this month's and this season's figures
per currency (``services.overview.Overview.figures``) and the *Needs attention* list
(``Overview.needs_attention``), each item linking to its link's page. Everyone who may VIEW.

Read only; what each figure counts is the service's docstring, and the page says it in a hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from aiohttp import web
from babel.dates import format_date

from gateway.domain.accounts import Permission
from gateway.i18n.catalogs import N_, localize
from gateway.services.overview import Attention, AttentionGroup, Period, PeriodFigures
from gateway.web.console.base import locale_of, render, require
from gateway.web.keys import ORG_SETTINGS, OVERVIEW

routes = web.RouteTableDef()

GROUP_TITLES: Final = {
    Attention.ORPHAN: N_("Paid at Stripe, not recorded here"),
    Attention.DUPLICATE: N_("Paid twice: a payment to refund"),
    Attention.DISPUTE: N_("Disputed payments"),
    Attention.FAILED_BANK_PAYMENT: N_("Bank payments that failed"),
    Attention.FAILED_EMAIL: N_("Emails that could not be sent"),
    Attention.EXPIRING: N_("Unpaid links that expire within 3 days"),
    Attention.FAILED_EVENT: N_("Stripe events that could not be applied"),
    Attention.STUCK_EVENT: N_("Stripe events still waiting to be applied"),
}
# Where "and N more" leads, for the kinds the links list can filter on.
MORE_FILTERS: Final = {
    Attention.DUPLICATE: "duplicate",
    Attention.FAILED_BANK_PAYMENT: "failed",
}


@dataclass(frozen=True, slots=True)
class ItemView:
    sentence: str
    link_id: str | None
    at: Any
    amount: int | None
    currency: str | None
    expires: bool


@dataclass(frozen=True, slots=True)
class GroupView:
    kind: str
    title: str
    count: int
    more: int
    more_status: str | None
    items: tuple[ItemView, ...]


def day(value: date, locale: str) -> str:
    """A local calendar day, the way the reader writes it ("January 31, 2027")."""
    return str(format_date(value, "long", locale=locale.replace("-", "_")))


def _group(group: AttentionGroup, locale: str) -> GroupView:
    return GroupView(
        kind=group.kind.value,
        title=localize(locale, GROUP_TITLES[group.kind]),
        count=group.count,
        more=group.more,
        more_status=MORE_FILTERS.get(group.kind),
        items=tuple(
            ItemView(
                sentence=localize(locale, item.sentence),
                link_id=item.link_id,
                at=item.at,
                amount=item.amount,
                currency=item.currency,
                expires=group.kind is Attention.EXPIRING,
            )
            for item in group.items
        ),
    )


def _period(figures: PeriodFigures, locale: str) -> dict[str, Any]:
    return {
        "figures": figures,
        "first": day(figures.first_day, locale),
        "last": day(figures.last_day, locale),
    }


@routes.get("/", name="console.overview")
async def overview(request: web.Request) -> web.Response:
    require(request, Permission.VIEW)
    locale = locale_of(request)
    await request.config_dict[ORG_SETTINGS].fresh()
    service = request.config_dict[OVERVIEW]
    month = await service.figures(Period.MONTH)
    season = await service.figures(Period.SEASON)
    groups = await service.needs_attention()
    return render(
        request,
        "console/overview.html",
        {
            "month": _period(month, locale),
            "season": _period(season, locale),
            "groups": [_group(group, locale) for group in groups],
        },
    )
