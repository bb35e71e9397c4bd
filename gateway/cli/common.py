"""What every ``gateway`` command shares: its errors, the two printers, the admin services."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.adapters.mail import SmtpMailer
from gateway.config import Settings
from gateway.domain.errors import GatewayError
from gateway.resources import resource_dir
from gateway.runtime import Runtime, open_runtime
from gateway.services.admin_links import AdminLinks
from gateway.services.email import LinkMailer

ACTOR = "cli"


class CliError(Exception):
    """Reported on stderr; exit status 2."""


class CommandFailed(GatewayError):
    """Something did not work (an email not sent); exit status 1."""


@dataclass(frozen=True, slots=True)
class AdminRuntime:
    rt: Runtime
    mailer: LinkMailer
    admin: AdminLinks


@asynccontextmanager
async def open_admin(settings: Settings) -> AsyncIterator[AdminRuntime]:
    async with open_runtime(settings) as rt:
        smtp = SmtpMailer(settings.email) if settings.email.enabled else None
        mailer = LinkMailer(
            rt.db, rt.links, smtp, settings, rt.clock, str(resource_dir("templates"))
        )
        admin = AdminLinks(rt.db, rt.links, mailer, rt.payments, settings, rt.clock)
        yield AdminRuntime(rt, mailer, admin)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")
