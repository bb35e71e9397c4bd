"""A local SMTP sink (aiosmtpd) for the demo and the tests: it accepts every message, keeps it in
memory, and a page shows what was "sent". Nothing leaves the machine.

It runs on the caller's event loop (no thread), so a test that awaits a send can read the message
back at once: the server stores it before it answers the client's final ``250``.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True, slots=True)
class SentMail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class MailSink:
    """An aiosmtpd handler that keeps messages; ``start()`` listens on loopback."""

    def __init__(self, limit: int = 500) -> None:
        self.messages: list[SentMail] = []
        self._limit = limit
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(SentMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message))
        del self.messages[: -self._limit]
        return "250 OK"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="gateway-mail-sink", loop=loop), host, port
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def to(self, address: str) -> list[SentMail]:
        return [m for m in self.messages if address in m.recipients]


def mail_page_routes(sink: MailSink) -> list[web.RouteDef]:
    """``GET /_demo/mail``: what the demo "sent", newest first (demo only, never in serve)."""

    async def page(_: web.Request) -> web.Response:
        rows: list[str] = []
        for mail in reversed(sink.messages):
            rows.append(
                "<article><h2>{subject}</h2><p>To {to}</p><pre>{body}</pre></article>".format(
                    subject=html.escape(mail.subject),
                    to=html.escape(", ".join(mail.recipients)),
                    body=html.escape(mail.text()),
                )
            )
        body = "".join(rows) or "<p>No mail sent yet.</p>"
        document = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="robots" content="noindex"><title>Demo mailbox</title>'
            '<link rel="stylesheet" href="/static/gateway.css"></head>'
            f'<body><main class="card"><h1>Demo mailbox</h1>'
            f"<p>Messages the demo sent ({len(sink.messages)}), newest first.</p>"
            f"{body}</main></body></html>"
        )
        return web.Response(text=document, content_type="text/html")

    return [web.get("/_demo/mail", page, name="demo_mail")]
