"""The Activity page: the audit trail, newest first, for admins (issue 15 item 5: every action
with who did it, shown in the console). Each link's own history is on its detail page."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.domain.accounts import Permission
from gateway.i18n.catalogs import N_
from gateway.services.audit import AuditFilter
from gateway.web.console.base import render, require, t
from gateway.web.keys import AUDIT_TRAIL

routes = web.RouteTableDef()

# What the kind filter offers: a fixed set, each a few action prefixes.
KINDS: Mapping[str, tuple[str, ...]] = {
    "signins": ("login", "logout"),
    "accounts": ("account.",),
    "links": ("link.", "order.", "reminders.", "mail."),
    "exports": ("export",),
    "settings": ("settings",),
}
KIND_LABELS: Mapping[str, str] = {
    "signins": N_("Logins"),
    "accounts": N_("Accounts"),
    "links": N_("Links and payments"),
    "exports": N_("Exports"),
    "settings": N_("Settings"),
}
# Sentences for the actions people read most; any other shows its code.
ACTIONS: Mapping[str, str] = {
    "login": N_("Logged in"),
    "login_password": N_("Password accepted, second factor asked"),
    "login_failed": N_("Failed login"),
    "logout": N_("Logged out"),
    "logout_everywhere": N_("Logged out everywhere"),
    "account.created": N_("Account created"),
    "account.invited": N_("Account invited"),
    "account.invitation_accepted": N_("Invitation accepted"),
    "account.reset_issued": N_("Password reset issued"),
    "account.disabled": N_("Account disabled"),
    "account.enabled": N_("Account enabled"),
    "account.role_changed": N_("Role changed"),
    "account.password_changed": N_("Password changed"),
    "account.totp_enabled": N_("Two-factor authentication turned on"),
    "account.totp_disabled": N_("Two-factor authentication turned off"),
    "account.recovery_codes": N_("New recovery codes made"),
    "link.issued": N_("Link issued"),
    "link.revoked": N_("Link revoked"),
    "export": N_("Links exported"),
    "settings": N_("Settings changed"),
}
PAGE_SIZE = 50


@routes.get("/activity", name="console.activity")
async def activity(request: web.Request) -> web.Response:
    require(request, Permission.MANAGE_ACCOUNTS)
    kind = request.query.get("kind", "")
    if kind not in KINDS:
        kind = ""
    before = request.query.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    page = await request.config_dict[AUDIT_TRAIL].recent(
        AuditFilter(action_prefixes=KINDS.get(kind, ()), before_id=before_id, limit=PAGE_SIZE)
    )
    entries = [
        {
            "at": entry.at,
            "what": t(request, ACTIONS[entry.action]) if entry.action in ACTIONS else entry.action,
            "actor": entry.actor,
            "link_id": entry.link_id,
            "detail": entry.detail or "",
        }
        for entry in page.entries
    ]
    kinds = [(key, t(request, label)) for key, label in KIND_LABELS.items()]
    context = {
        "entries": entries,
        "kind": kind,
        "kinds": kinds,
        "next_before": page.next_before_id,
        "first_page": before_id is None,
    }
    return render(request, "console/activity.html", context)
