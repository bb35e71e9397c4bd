"""The accounts pages (issue 15, admins only: ``Permission.MANAGE_ACCOUNTS``).

- ``/accounts``: every account (email, name, role, invited/active/disabled, second factor, last
  login) and the invitation form (email, name, role, language: ``Accounts.invite`` emails it).
- ``/accounts/{account_id}``: one account, with its actions: change the role, disable or enable,
  send a password reset. Each is a POST (CSRF-checked by the middleware), audited by the
  service; the last active admin can be neither disabled nor demoted (the service refuses, and
  the page shows its refusal next to the field).

When mail is not configured, an invitation or reset link cannot be emailed: the page shows it
once, for the admin to pass on (as ``gateway users add`` prints it).
"""

from __future__ import annotations

from aiohttp import web

from gateway.domain.accounts import Permission, Role
from gateway.domain.errors import ValidationFailed
from gateway.domain.locales import OFFERED
from gateway.domain.text import message_of
from gateway.i18n.catalogs import N_, localize
from gateway.services.accounts import AccountDisabled, AccountView, Invitation, LastAdmin
from gateway.web.console.base import (
    NOTICES,
    FormErrors,
    field,
    form_data,
    locale_of,
    redirect_to,
    render,
    require,
    t,
)
from gateway.web.keys import ACCOUNTS

routes = web.RouteTableDef()

ROLES = tuple(role.value for role in Role)
# Bounded like the ids the service makes ("ac_" + 16 characters): anything longer is not one.
ACCOUNT_ID_CHARS = 40


def _account_id(request: web.Request) -> str:
    value = request.match_info["account_id"]
    if len(value) > ACCOUNT_ID_CHARS or not value.startswith("ac_"):
        raise web.HTTPNotFound()
    return value


async def _list_page(
    request: web.Request,
    *,
    errors: FormErrors | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    accounts = await request.config_dict[ACCOUNTS].list()
    context = {
        "accounts": accounts,
        "errors": errors or FormErrors(),
        "form": form or {"email": "", "name": "", "role": "treasurer", "locale": ""},
        "roles": ROLES,
        "offered": OFFERED,
        "mail_enabled": request.config_dict[ACCOUNTS].mail_enabled,
    }
    return render(request, "console/accounts.html", context, status=status)


@routes.get("/accounts", name="console.accounts")
async def accounts_page(request: web.Request) -> web.Response:
    require(request, Permission.MANAGE_ACCOUNTS)
    return await _list_page(request)


@routes.post("/accounts", name="console.accounts")
async def invite(request: web.Request) -> web.Response:
    found = require(request, Permission.MANAGE_ACCOUNTS)
    data = await form_data(request)
    form = {
        "email": field(data, "email", max_chars=320),
        "name": field(data, "name", max_chars=400),
        "role": field(data, "role", max_chars=20),
        "locale": field(data, "locale", max_chars=16),
    }
    errors = FormErrors()
    if not form["email"]:
        errors.add("email", t(request, N_("Enter the person's email address")))
    if form["role"] not in ROLES:
        errors.add("role", t(request, N_("Choose a role")))
    if form["locale"] and form["locale"] not in OFFERED:
        errors.add("locale", t(request, N_("Choose one of the languages offered")))
    if not errors:
        try:
            invitation = await request.config_dict[ACCOUNTS].invite(
                form["email"],
                form["role"],
                name=form["name"],
                actor=found.actor,
                locale=form["locale"] or locale_of(request),
            )
        except ValidationFailed as exc:
            errors = FormErrors.from_validation(exc, locale_of(request))
        else:
            if invitation.emailed:
                raise redirect_to(request, "console.accounts", notice="invited")
            return _link_once(request, invitation)
    return await _list_page(request, errors=errors, form=form, status=400)


def _link_once(request: web.Request, invitation: Invitation) -> web.Response:
    """The set-password link, shown this once (it could not be emailed)."""
    return render(request, "console/account_link.html", {"invitation": invitation})


async def _account_page(
    request: web.Request,
    account: AccountView | None = None,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    if account is None:
        account = await request.config_dict[ACCOUNTS].get(_account_id(request))
    context = {
        "account": account,
        "errors": errors or FormErrors(),
        "roles": ROLES,
        "mail_enabled": request.config_dict[ACCOUNTS].mail_enabled,
    }
    return render(request, "console/account_admin.html", context, status=status)


def _refused(request: web.Request, name: str, exc: Exception) -> FormErrors:
    """The service's refusal, next to the field it is about."""
    errors = FormErrors()
    errors.add(name, localize(locale_of(request), message_of(exc)))
    return errors


@routes.get("/accounts/{account_id}", name="console.account_admin")
async def account_page(request: web.Request) -> web.Response:
    require(request, Permission.MANAGE_ACCOUNTS)
    return await _account_page(request)


@routes.post("/accounts/{account_id}/role", name="console.account_role")
async def set_role(request: web.Request) -> web.Response:
    found = require(request, Permission.MANAGE_ACCOUNTS)
    account_id = _account_id(request)
    data = await form_data(request)
    role = field(data, "role", max_chars=20)
    if role not in ROLES:
        errors = FormErrors()
        errors.add("role", t(request, N_("Choose a role")))
        return await _account_page(request, errors=errors, status=400)
    try:
        await request.config_dict[ACCOUNTS].set_role(account_id, role, actor=found.actor)
    except LastAdmin as exc:
        return await _account_page(request, errors=_refused(request, "role", exc), status=409)
    raise redirect_to(
        request, "console.account_admin", notice="account_updated", account_id=account_id
    )


@routes.post("/accounts/{account_id}/disable", name="console.account_disable")
async def disable(request: web.Request) -> web.Response:
    found = require(request, Permission.MANAGE_ACCOUNTS)
    account_id = _account_id(request)
    try:
        await request.config_dict[ACCOUNTS].disable(account_id, actor=found.actor)
    except LastAdmin as exc:
        errors = _refused(request, "disable", exc)
        return await _account_page(request, errors=errors, status=409)
    raise redirect_to(
        request, "console.account_admin", notice="account_updated", account_id=account_id
    )


@routes.post("/accounts/{account_id}/enable", name="console.account_enable")
async def enable(request: web.Request) -> web.Response:
    found = require(request, Permission.MANAGE_ACCOUNTS)
    account_id = _account_id(request)
    await request.config_dict[ACCOUNTS].enable(account_id, actor=found.actor)
    raise redirect_to(
        request, "console.account_admin", notice="account_updated", account_id=account_id
    )


# Asked of the lead (base.NOTICES): "reset_sent"; until it exists, the general one.
_RESET_NOTICE = "reset_sent" if "reset_sent" in NOTICES else "account_updated"


@routes.post("/accounts/{account_id}/reset", name="console.account_reset")
async def send_reset(request: web.Request) -> web.Response:
    found = require(request, Permission.MANAGE_ACCOUNTS)
    account_id = _account_id(request)
    accounts = request.config_dict[ACCOUNTS]
    try:
        account = await accounts.get(account_id)
        invitation = await accounts.reset(
            account_id, actor=found.actor, send=True, locale=account.locale
        )
    except AccountDisabled as exc:
        errors = _refused(request, "reset", exc)
        return await _account_page(request, errors=errors, status=409)
    if not invitation.emailed:
        return _link_once(request, invitation)
    raise redirect_to(request, "console.account_admin", notice=_RESET_NOTICE, account_id=account_id)
