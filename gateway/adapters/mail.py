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
    """The message was not accepted; ``str()`` is safe to store and show (no password)."""


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
            raise MailError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}"[:400]) from None
        except OSError as exc:
            raise MailError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}"[:400]) from None
