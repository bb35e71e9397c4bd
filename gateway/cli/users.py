"""``gateway users add|list|disable|enable|reset|role``: the console's accounts on the command
line (the first admin is made here: ``gateway users add --email ... --role admin``).

``add`` and ``reset`` print a one-time link to choose a password (an invitation valid 72 h, a
reset 24 h): hand it to the person, it is shown once and stored nowhere. Every change is in the
audit trail by ``cli``. Errors: bad input exits 2, a refusal (the last admin, an unknown
account) exits 1.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from gateway.cli.common import ACTOR, cli_locale, print_json, print_table
from gateway.config import Settings
from gateway.i18n import translate
from gateway.runtime import open_runtime
from gateway.services.accounts import AccountView, Invitation


def account_json(view: AccountView) -> dict[str, object]:
    return {
        "id": view.id,
        "email": view.email,
        "name": view.name,
        "role": view.role.value,
        "status": view.status,
        "totp_enabled": view.totp_enabled,
        "created_at": _iso(view.created_at),
        "created_by": view.created_by,
        "last_login_at": _iso(view.last_login_at),
        "disabled_at": _iso(view.disabled_at),
        "locale": view.locale,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _minute(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _print_link(settings: Settings, invitation: Invitation, *, json: bool) -> None:
    if json:
        print_json(
            {
                "account": account_json(invitation.account),
                "purpose": invitation.purpose,
                "url": invitation.url,
                "expires_at": _iso(invitation.expires_at),
            }
        )
        return
    locale = cli_locale(settings)
    if invitation.purpose == "invite":
        line = translate(
            locale, "One-time link for %(email)s to choose a password (until %(time)s):"
        )
    else:
        line = translate(
            locale, "One-time link for %(email)s to choose a new password (until %(time)s):"
        )
    print(line % {"email": invitation.account.email, "time": _minute(invitation.expires_at)})
    print(invitation.url)
    print(translate(locale, "It is shown only now: give it to that person only."))


async def users_add(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        invitation = await rt.services.accounts.add(
            args.email, args.role, name=args.name, actor=ACTOR
        )
    if not args.json:
        view = invitation.account
        added = translate(cli_locale(settings), "%(id)s: %(email)s added as %(role)s")
        print(added % {"id": view.id, "email": view.email, "role": view.role.value})
    _print_link(settings, invitation, json=args.json)


async def users_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        accounts = await rt.services.accounts.list()
    if args.json:
        print_json([account_json(a) for a in accounts])
        return
    locale = cli_locale(settings)
    print_table(
        [
            [
                a.id,
                a.email,
                a.name,
                a.role.value,
                a.status,
                translate(locale, "yes") if a.totp_enabled else "",
                _minute(a.last_login_at) if a.last_login_at else "",
            ]
            for a in accounts
        ],
        [
            translate(locale, "id"),
            translate(locale, "email"),
            translate(locale, "name"),
            translate(locale, "role"),
            translate(locale, "status"),
            translate(locale, "2fa"),
            translate(locale, "last login"),
        ],
        locale=locale,
    )


def _print_account(settings: Settings, view: AccountView, *, json: bool, done: str) -> None:
    if json:
        print_json(account_json(view))
        return
    message = translate(cli_locale(settings), done)
    print(message % {"id": view.id, "email": view.email, "role": view.role.value})


async def users_disable(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        accounts = rt.services.accounts
        view = await accounts.disable((await accounts.find(args.account)).id, actor=ACTOR)
    _print_account(
        settings,
        view,
        json=args.json,
        done="%(email)s disabled: its sessions ended and it cannot log in",
    )


async def users_enable(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        accounts = rt.services.accounts
        view = await accounts.enable((await accounts.find(args.account)).id, actor=ACTOR)
    _print_account(settings, view, json=args.json, done="%(email)s enabled")


async def users_role(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        accounts = rt.services.accounts
        view = await accounts.set_role(
            (await accounts.find(args.account)).id, args.role, actor=ACTOR
        )
    _print_account(settings, view, json=args.json, done="%(email)s is now %(role)s")


async def users_reset(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        invitation = await rt.services.accounts.reset(args.account, actor=ACTOR, send=False)
    _print_link(settings, invitation, json=args.json)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gateway users`` and its subcommands."""
    users = sub.add_parser("users", help="console accounts").add_subparsers(
        dest="users_command", required=True
    )
    p = users.add_parser(
        "add", help="add an account and print a one-time link to choose its password"
    )
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, help="viewer, treasurer or admin")
    p.add_argument("--name", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_add)

    p = users.add_parser("list", help="every account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_list)

    for name, func, text in (
        ("disable", users_disable, "disable an account (its sessions end at once)"),
        ("enable", users_enable, "enable a disabled account"),
        ("reset", users_reset, "print a one-time link to choose a new password"),
    ):
        p = users.add_parser(name, help=text)
        p.add_argument("account", metavar="EMAIL", help="the account's email (or id)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = users.add_parser("role", help="change an account's role")
    p.add_argument("account", metavar="EMAIL", help="the account's email (or id)")
    p.add_argument("role", metavar="ROLE", help="viewer, treasurer or admin")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_role)
