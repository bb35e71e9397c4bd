"""Logging in and out of the console, the second factor, and a person's own account (issue 15).

- ``/login``: email and password (``ConsoleAuth.login``). A refusal says the same whatever was
  wrong; a lockout answers 429 with ``Retry-After``. ``next`` only ever leads to a console path.
- ``/login/code``: the second factor of a session that owes one (a TOTP code or a recovery
  code); answering it replaces the session (a new cookie).
- ``/account``: name, email, role, the console's language, changing the password, the second
  factor's state and the sessions of the account, with "log out everywhere".
- ``/account/2fa``: setting up the second factor (QR code and the secret as text, confirmed by
  a code, then the recovery codes shown once), new recovery codes, turning it off (with the
  password; refused when ``admin.require_2fa``).
- ``/invitation/{token}`` and ``/reset/{token}``: a set-password link (public; the token is a
  secret, never logged here). An unknown link is a 404 page, a used or expired one a 410 page.

The route names are the middleware's and the layout's (``console.login``,
``console.login_submit``, ``console.logout``, ``console.second_factor``, ``console.enrol_2fa``,
``console.account``): a GET and the POST of the same path share the name (aiohttp keeps them on
one resource when they are added one after the other), so a session that owes its second factor
or its enrolment may post the form of the page it is held on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.domain.accounts import PASSWORD_MAX_LENGTH
from gateway.domain.errors import ValidationFailed
from gateway.domain.locales import OFFERED
from gateway.domain.text import Text
from gateway.i18n.catalogs import N_
from gateway.services.accounts import AccountLinkInvalid, RecoveryCodes, TotpEnrolment
from gateway.services.console_auth import LoginRefused, Principal
from gateway.web.console.base import (
    FormErrors,
    clear_session_cookie,
    client_of,
    field,
    form_data,
    locale_of,
    maybe_principal,
    principal,
    public,
    redirect_to,
    render,
    session_cookie,
    set_session_cookie,
    t,
    url_for,
)
from gateway.web.keys import ACCOUNTS, CONSOLE_AUTH

routes = web.RouteTableDef()

LOGIN_REFUSED = N_("The email address or the password is wrong, or this account cannot log in now.")
CODE_REFUSED = N_("That code is not right. Type the code your app shows now, or a recovery code.")
PASSWORDS_DIFFER = N_("The two passwords are not the same")
ENTER_PASSWORD = N_("Enter your password")
ENTER_NEW_PASSWORD = N_("Enter a new password")
REPEAT_PASSWORD = N_("Enter the new password again")


def _next_path(request: web.Request, value: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    if (
        value.startswith("/admin/")
        and not value.startswith("//")
        and "\\" not in value
        and not any(c.isspace() or not c.isprintable() for c in value)
        and not value.startswith("/admin/login")
    ):
        return value
    return url_for(request, "console.overview")


def _password(data: Mapping[str, Any], name: str) -> str:
    """A password field as typed (not trimmed: spaces are part of it); "" when absent. Bounded
    just past the longest password accepted (the service refuses that one unhashed)."""
    value = data.get(name, "")
    return value[: PASSWORD_MAX_LENGTH + 1] if isinstance(value, str) else ""


def _too_many(request: web.Request, retry_after: int) -> str:
    minutes = max(1, (retry_after + 59) // 60)
    return t(
        request,
        Text("Too many attempts. Wait %(minutes)s minutes, then try again.", minutes=minutes),
    )


# --- logging in -------------------------------------------------------------------------------


def _login_page(
    request: web.Request,
    *,
    errors: FormErrors,
    email: str = "",
    next_path: str = "",
    status: int = 200,
    lockout: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    context = {"errors": errors, "email": email, "next": next_path, "lockout": lockout}
    return render(request, "console/login.html", context, status=status, headers=headers)


@routes.get("/login", name="console.login")
@public
async def login_page(request: web.Request) -> web.Response:
    found = maybe_principal(request)
    if found is not None and not found.second_factor_pending:
        raise redirect_to(request, "console.overview")
    next_path = request.query.get("next", "")[:500]
    return _login_page(request, errors=FormErrors(), next_path=next_path)


@routes.post("/login", name="console.login_submit")
@public
async def login(request: web.Request) -> web.Response:
    data = await form_data(request)
    email = field(data, "email", max_chars=320)
    password = _password(data, "password")
    next_path = _next_path(request, field(data, "next", max_chars=500))
    errors = FormErrors()
    if not email:
        errors.add("email", t(request, N_("Enter your email address")))
    if not password:
        errors.add("password", t(request, ENTER_PASSWORD))
    if errors:
        return _login_page(request, errors=errors, email=email, next_path=next_path, status=400)
    try:
        result = await request.config_dict[CONSOLE_AUTH].login(
            email,
            password,
            client=client_of(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except LoginRefused as refused:
        # One message whatever was wrong: the page never says which part it was.
        errors.add("email", t(request, LOGIN_REFUSED))
        if refused.retry_after:
            return _login_page(
                request,
                errors=errors,
                email=email,
                next_path=next_path,
                status=429,
                lockout=_too_many(request, refused.retry_after),
                headers={"Retry-After": str(refused.retry_after)},
            )
        return _login_page(request, errors=errors, email=email, next_path=next_path, status=400)
    if result.second_factor_needed:
        target = url_for(request, "console.second_factor", {"next": next_path})
    else:
        target = next_path
    response = web.HTTPSeeOther(target)
    set_session_cookie(request, response, result.cookie)
    raise response


@routes.post("/logout", name="console.logout")
async def logout(request: web.Request) -> web.Response:
    cookie = session_cookie(request)
    if cookie is not None:
        await request.config_dict[CONSOLE_AUTH].logout(cookie)
    response = redirect_to(request, "console.login", notice="logged_out")
    clear_session_cookie(response)
    raise response


# --- the second factor ------------------------------------------------------------------------


def _second_factor_page(
    request: web.Request,
    errors: FormErrors,
    next_path: str,
    *,
    status: int = 200,
    lockout: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    context = {"errors": errors, "next": next_path, "lockout": lockout}
    return render(request, "console/second_factor.html", context, status=status, headers=headers)


@routes.get("/login/code", name="console.second_factor")
async def second_factor_page(request: web.Request) -> web.Response:
    found = principal(request)
    next_path = _next_path(request, request.query.get("next", "")[:500])
    if not found.second_factor_pending:
        raise web.HTTPSeeOther(next_path)
    return _second_factor_page(request, FormErrors(), next_path)


@routes.post("/login/code", name="console.second_factor")
async def second_factor(request: web.Request) -> web.Response:
    found = principal(request)
    data = await form_data(request)
    next_path = _next_path(request, field(data, "next", max_chars=500))
    if not found.second_factor_pending:
        raise web.HTTPSeeOther(next_path)
    code = field(data, "code", max_chars=64)
    errors = FormErrors()
    cookie = session_cookie(request)
    if not code:
        errors.add("code", t(request, N_("Enter the code from your authenticator app")))
        return _second_factor_page(request, errors, next_path, status=400)
    try:
        new_cookie = await request.config_dict[CONSOLE_AUTH].second_factor(
            cookie or "", code, client=client_of(request)
        )
    except LoginRefused as refused:
        errors.add("code", t(request, CODE_REFUSED))
        if refused.retry_after:
            return _second_factor_page(
                request,
                errors,
                next_path,
                status=429,
                lockout=_too_many(request, refused.retry_after),
                headers={"Retry-After": str(refused.retry_after)},
            )
        return _second_factor_page(request, errors, next_path, status=400)
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(request, response, new_cookie)
    raise response


# --- the account page -------------------------------------------------------------------------


async def _account_page(
    request: web.Request,
    found: Principal,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    account = await request.config_dict[ACCOUNTS].get(found.account_id)
    sessions = await request.config_dict[CONSOLE_AUTH].sessions(
        found.account_id, current=found.session_id
    )
    context = {
        "account": account,
        "sessions": sessions,
        "errors": errors or FormErrors(),
        "offered": OFFERED,
        "require_2fa": request.config_dict[CONSOLE_AUTH].require_2fa,
    }
    return render(request, "console/account.html", context, status=status)


@routes.get("/account", name="console.account")
async def account_page(request: web.Request) -> web.Response:
    return await _account_page(request, principal(request))


# The password form's fields on the page, and the service's names for them.
_PASSWORD_FIELDS = {"current": "current_password", "new": "new_password"}


@routes.post("/account/password", name="console.change_password")
async def change_password(request: web.Request) -> web.Response:
    found = principal(request)
    data = await form_data(request)
    current = _password(data, "current_password")
    new = _password(data, "new_password")
    confirm = _password(data, "confirm_password")
    errors = FormErrors()
    if not current:
        errors.add("current_password", t(request, N_("Enter your current password")))
    if not new:
        errors.add("new_password", t(request, ENTER_NEW_PASSWORD))
    if not confirm:
        errors.add("confirm_password", t(request, REPEAT_PASSWORD))
    elif new and confirm != new:
        errors.add("confirm_password", t(request, PASSWORDS_DIFFER))
    if not errors:
        # The current password is checked through the login brake first (a guess costs the
        # same as a login's, and counts toward the same lockout).
        try:
            right = await request.config_dict[CONSOLE_AUTH].confirm_password(
                found.account_id, current, client=client_of(request)
            )
        except LoginRefused as refused:
            errors.add("current_password", _too_many(request, refused.retry_after or 60))
            return await _account_page(request, found, errors=errors, status=429)
        if not right:
            errors.add("current_password", t(request, N_("The current password is not right")))
            return await _account_page(request, found, errors=errors, status=400)
    if not errors:
        try:
            await request.config_dict[ACCOUNTS].change_password(
                found.account_id, current, new, keep_session=found.session_id
            )
        except ValidationFailed as exc:
            for name, message in FormErrors.from_validation(exc, locale_of(request)).items():
                errors.add(_PASSWORD_FIELDS.get(name, "new_password"), message)
        else:
            raise redirect_to(request, "console.account", notice="password_changed")
    return await _account_page(request, found, errors=errors, status=400)


@routes.post("/account/language", name="console.set_language")
async def set_language(request: web.Request) -> web.Response:
    found = principal(request)
    data = await form_data(request)
    chosen = field(data, "locale", max_chars=16)
    if chosen and chosen not in OFFERED:
        errors = FormErrors()
        errors.add("locale", t(request, N_("Choose one of the languages offered")))
        return await _account_page(request, found, errors=errors, status=400)
    await request.config_dict[ACCOUNTS].set_locale(
        found.account_id, chosen or None, actor=found.actor
    )
    raise redirect_to(request, "console.account", notice="account_updated")


@routes.post("/account/sessions/end", name="console.logout_everywhere")
async def logout_everywhere(request: web.Request) -> web.Response:
    found = principal(request)
    await request.config_dict[CONSOLE_AUTH].logout_everywhere(found.account_id, actor=found.actor)
    response = redirect_to(request, "console.login", notice="logged_out_everywhere")
    clear_session_cookie(response)
    raise response


# --- the second factor: setting it up ---------------------------------------------------------


def _enrol_page(
    request: web.Request,
    *,
    state: str,
    errors: FormErrors | None = None,
    enrolment: TotpEnrolment | None = None,
    codes: RecoveryCodes | None = None,
    codes_left: int = 0,
    status: int = 200,
) -> web.Response:
    context = {
        "state": state,
        "errors": errors or FormErrors(),
        "enrolment": enrolment,
        "secret_groups": _groups(enrolment.secret) if enrolment is not None else "",
        "codes": codes or [],
        "codes_left": codes_left,
        "require_2fa": request.config_dict[CONSOLE_AUTH].require_2fa,
    }
    return render(request, "console/enrol_2fa.html", context, status=status)


def _groups(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


async def _current_enrol_page(
    request: web.Request, found: Principal, *, errors: FormErrors | None = None, status: int = 200
) -> web.Response:
    accounts = request.config_dict[ACCOUNTS]
    account = await accounts.get(found.account_id)
    if account.totp_enabled:
        left = await accounts.recovery_codes_left(found.account_id)
        return _enrol_page(request, state="on", errors=errors, codes_left=left, status=status)
    enrolment = await accounts.totp_enrolment(found.account_id)
    if enrolment is not None:
        return _enrol_page(request, state="scan", errors=errors, enrolment=enrolment, status=status)
    return _enrol_page(request, state="off", errors=errors, status=status)


@routes.get("/account/2fa", name="console.enrol_2fa")
async def enrol_page(request: web.Request) -> web.Response:
    return await _current_enrol_page(request, principal(request))


@routes.post("/account/2fa", name="console.enrol_2fa")
async def enrol(request: web.Request) -> web.Response:
    """``action=begin``: a new secret (the QR code); ``action=confirm``: a code from the app
    turns the second factor on, and the recovery codes are shown, this once."""
    found = principal(request)
    data = await form_data(request)
    accounts = request.config_dict[ACCOUNTS]
    action = field(data, "action", max_chars=20)
    errors = FormErrors()
    if action == "begin":
        try:
            enrolment = await accounts.begin_totp(found.account_id)
        except ValidationFailed:  # already on (another tab): show its state
            return await _current_enrol_page(request, found)
        return _enrol_page(request, state="scan", enrolment=enrolment)
    if action != "confirm":
        return await _current_enrol_page(request, found, status=400)
    code = field(data, "code", max_chars=64)
    if not code:
        errors.add("code", t(request, N_("Enter the code from your authenticator app")))
        return await _current_enrol_page(request, found, errors=errors, status=400)
    try:
        codes = await accounts.confirm_totp(found.account_id, code, actor=found.actor)
    except ValidationFailed as exc:
        errors = FormErrors.from_validation(exc, locale_of(request))
        return await _current_enrol_page(request, found, errors=errors, status=400)
    return _enrol_page(request, state="codes", codes=codes)


@routes.post("/account/2fa/codes", name="console.recovery_codes")
async def recovery_codes(request: web.Request) -> web.Response:
    found = principal(request)
    try:
        codes = await request.config_dict[ACCOUNTS].new_recovery_codes(
            found.account_id, actor=found.actor
        )
    except ValidationFailed:  # not set up: the page says so
        return await _current_enrol_page(request, found, status=409)
    return _enrol_page(request, state="codes", codes=codes)


@routes.post("/account/2fa/disable", name="console.disable_2fa")
async def disable_2fa(request: web.Request) -> web.Response:
    found = principal(request)
    data = await form_data(request)
    errors = FormErrors()
    if request.config_dict[CONSOLE_AUTH].require_2fa:
        errors.add(
            "password",
            t(request, N_("Two-factor authentication is required here: it cannot be turned off.")),
        )
        return await _current_enrol_page(request, found, errors=errors, status=403)
    password = _password(data, "password")
    if not password:
        errors.add("password", t(request, ENTER_PASSWORD))
        return await _current_enrol_page(request, found, errors=errors, status=400)
    accounts = request.config_dict[ACCOUNTS]
    try:
        right = await request.config_dict[CONSOLE_AUTH].confirm_password(
            found.account_id, password, client=client_of(request)
        )
    except LoginRefused as refused:
        errors.add("password", _too_many(request, refused.retry_after or 60))
        return await _current_enrol_page(request, found, errors=errors, status=429)
    if not right:
        errors.add("password", t(request, N_("That password is not right")))
        return await _current_enrol_page(request, found, errors=errors, status=400)
    await accounts.disable_totp(found.account_id, actor=found.actor)
    raise redirect_to(request, "console.account", notice="2fa_disabled")


# --- set-password links (invitations and resets) ----------------------------------------------


def _link_invalid(request: web.Request, reason: str) -> web.Response:
    """A link that cannot be used: 404 when it never was one, 410 when it was and is no more."""
    status = 404 if reason == "unknown" else 410
    return render(request, "console/link_invalid.html", {"reason": reason}, status=status)


async def _set_password_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        info = await request.config_dict[ACCOUNTS].inspect(token)
    except AccountLinkInvalid as exc:
        return _link_invalid(request, exc.reason)
    context = {"info": info, "errors": FormErrors(), "action": request.path}
    return render(request, "console/invitation.html", context)


async def _set_password(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    accounts = request.config_dict[ACCOUNTS]
    data = await form_data(request)
    password = _password(data, "password")
    confirm = _password(data, "confirm")
    try:
        info = await accounts.inspect(token)
    except AccountLinkInvalid as exc:
        return _link_invalid(request, exc.reason)
    errors = FormErrors()
    if not password:
        errors.add("password", t(request, ENTER_NEW_PASSWORD))
    if not confirm:
        errors.add("confirm", t(request, REPEAT_PASSWORD))
    elif password and confirm != password:
        errors.add("confirm", t(request, PASSWORDS_DIFFER))
    if not errors:
        try:
            await accounts.accept(token, password)
        except AccountLinkInvalid as exc:
            return _link_invalid(request, exc.reason)
        except ValidationFailed as exc:
            for name, message in FormErrors.from_validation(exc, locale_of(request)).items():
                errors.add(name if name in ("password", "confirm") else "password", message)
        else:
            raise redirect_to(request, "console.login", notice="password_set")
    context = {"info": info, "errors": errors, "action": request.path}
    return render(request, "console/invitation.html", context, status=400)


@routes.get("/invitation/{token}", name="console.invitation")
@public
async def invitation_page(request: web.Request) -> web.Response:
    return await _set_password_page(request)


@routes.post("/invitation/{token}", name="console.invitation")
@public
async def accept_invitation(request: web.Request) -> web.Response:
    return await _set_password(request)


@routes.get("/reset/{token}", name="console.reset")
@public
async def reset_page(request: web.Request) -> web.Response:
    return await _set_password_page(request)


@routes.post("/reset/{token}", name="console.reset")
@public
async def accept_reset(request: web.Request) -> web.Response:
    return await _set_password(request)
