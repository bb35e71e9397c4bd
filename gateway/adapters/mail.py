"""Sending mail over SMTP with aiosmtplib; every failure becomes one :class:`MailError`.

The message itself is built by the service layer (``gateway.services.email``); this module only
knows how to hand a finished message to a server, so tests and the demo can point it at a local
aiosmtpd sink and production at a real relay.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from gateway.config import EmailSettings


class MailError(Exception):
    """The message was not accepted; ``str()`` is safe to store and show (no password).

    ``permanent``: the server refused this message for good (a 5xx: an address it will never
    take, a message it will never accept); trying again later cannot help. Otherwise (no
    connection, a 4xx, a timeout) a later try may go through."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _permanent(exc: aiosmtplib.SMTPException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= refusal.code < 600 for refusal in exc.recipients)
    code = getattr(exc, "code", None)
    return isinstance(code, int) and 500 <= code < 600


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    def __init__(self, settings: EmailSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                use_tls=s.tls,
                start_tls=s.starttls if not s.tls else False,
                username=s.user or None,
                password=s.password or None,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPException as exc:
            # Server said no (refused recipient, auth, or could not connect).
            raise MailError(
                f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}"[:400],
                permanent=_permanent(exc),
            ) from None
        except OSError as exc:
            raise MailError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}"[:400]) from None
