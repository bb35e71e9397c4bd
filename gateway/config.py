"""Settings: ``config.toml`` overlaid with ``GATEWAY_<SECTION>_<KEY>`` environment variables.

Every section is a frozen dataclass, so a running app can never see its settings change under it.
Loading is strict: an unknown key is most likely a typo, and a wrong or missing value stops the
process at start-up with a message that names the key, long before a parent clicks a link.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NewType, Union, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain.locales import OFFERED, offered
from gateway.domain.reminders import ReminderError, parse_clock, parse_steps

Duration = NewType("Duration", float)
"""Seconds. Written as an integer (seconds) or a number with ``s``, ``m``, ``h`` or ``d``."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

DEMO_SECRET = "demo-only-secret-not-for-production"  # noqa: S105 - marks demo mode, never real


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it."""


def parse_duration(value: object, key: str = "duration") -> Duration:
    if isinstance(value, bool):
        raise ConfigError(
            f"{key}: expected a duration such as 90, 30s, 15m, 2h or 30d, got {value!r}"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(
                f"{key}: expected a duration such as 90, 30s, 15m, 2h or 30d, got {value!r}"
            )
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds < 0:
        raise ConfigError(f"{key}: a duration cannot be negative, got {value!r}")
    return Duration(seconds)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    shutdown_timeout: Duration = Duration(10.0)
    # Largest request body accepted anywhere; webhooks and admin bulk uploads stay well below.
    max_body_bytes: int = 1_048_576
    # Reverse proxies (CIDRs) whose X-Forwarded-For is believed; none: the TCP peer is the client.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///var/gateway.sqlite3"
    pool_size: int = 10
    # How long a GET may show a link's state after another replica changed it.
    snapshot_ttl: Duration = Duration(1.0)


@dataclass(frozen=True, slots=True)
class TokenSettings:
    # Newest first: the first key signs, every key verifies (rotation without breaking links).
    secret_keys: tuple[str, ...] = ()
    max_age: Duration = Duration(366 * 86400.0)


@dataclass(frozen=True, slots=True)
class CheckoutSettings:
    org_name: str = "Your organisation"
    contact_email: str = ""
    default_currency: str = "usd"
    default_valid_for: Duration = Duration(30 * 86400.0)
    # A pending order older than this is canceled and replaced on the next Pay.
    stale_after: Duration = Duration(1800.0)
    # A session is only reused while at least this much of its life is left.
    min_remaining: Duration = Duration(1800.0)
    success_path: str = "/pay/{token}/return"
    cancel_path: str = "/pay/{token}"
    refund_duplicates: bool = False
    # The language of a link issued without one (its bot preview and emails), and of pages whose
    # browser asks for nothing offered. One of gateway.domain.locales.OFFERED.
    default_locale: str = "en"
    # The organisation's IANA time zone: every date and time a payer or an admin reads.
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class StripeSettings:
    api_key: str = ""
    webhook_secret: str = ""
    api_base: str = "https://api.stripe.com"
    timeout: Duration = Duration(10.0)
    max_retries: int = 2
    # Everything one payer's request asks Stripe (the SDK's retries, waiting on another
    # replica's call with the same key) ends by this deadline; then the payer sees the 503 page.
    request_deadline: Duration = Duration(10.0)
    webhook_tolerance: Duration = Duration(300.0)


@dataclass(frozen=True, slots=True)
class EmailSettings:
    host: str = ""
    port: int = 25
    tls: bool = False
    starttls: bool = False
    user: str = ""
    password: str = ""
    from_address: str = ""
    timeout: Duration = Duration(10.0)
    # "Email me a new link" on an expired page: at most this many per link in this window.
    renew_limit: int = 3
    renew_window: Duration = Duration(86400.0)
    # A receipt when an order is paid; off for organisations that let Stripe send receipts
    # (Stripe sends none in test mode).
    receipts: bool = True
    # How often the outbox's sender looks for due messages (gateway serve).
    send_interval: Duration = Duration(5.0)

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.from_address)


@dataclass(frozen=True, slots=True)
class RemindersSettings:
    # Days relative to a link's due date ("-3,1,7": three days before, one and seven after);
    # at most three steps. A link without a due date gets no reminders.
    schedule: str = "-3,1,7"
    # Reminders go out between these local times (checkout.timezone), never at night.
    send_from: str = "09:00"
    send_until: str = "19:00"
    # Stops every reminder (receipts and other messages still go).
    paused: bool = False


@dataclass(frozen=True, slots=True)
class AlertsSettings:
    # Where the digest of things that need a person goes; empty: no digest.
    email: str = ""
    # At most one digest per interval, and none when there is nothing to say.
    interval: Duration = Duration(3600.0)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    # "name:sha256-hex" entries, or "name:plain-key" (hashed at load).
    api_keys: tuple[str, ...] = ()
    # Brute-force brake: this many refused keys from one client within failure_window -> 429.
    max_failures: int = 10
    failure_window: Duration = Duration(60.0)
    # The console (issue 15). Every account must set up a second factor before doing anything.
    require_2fa: bool = False
    # A console session ends after this long without a request, and this long after login.
    session_idle: Duration = Duration(1800.0)
    session_absolute: Duration = Duration(43200.0)
    # Console logins: after this many failures for one account or from one address within
    # login_window, further attempts are refused for login_lockout (the answer never says which).
    login_max_failures: int = 5
    login_window: Duration = Duration(900.0)
    login_lockout: Duration = Duration(900.0)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    # Optional guards on GET /metrics (both must pass when both are set): client networks
    # (CIDRs), and the SHA-256 hex of a bearer token. Neither set: /metrics is open.
    allow: tuple[str, ...] = ()
    bearer_token_sha256: str = ""


@dataclass(frozen=True, slots=True)
class BotSettings:
    extra_patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    interval: Duration = Duration(300.0)
    lookback: Duration = Duration(30 * 86400.0)


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"
    json: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    checkout: CheckoutSettings = field(default_factory=CheckoutSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    reminders: RemindersSettings = field(default_factory=RemindersSettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    bots: BotSettings = field(default_factory=BotSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    log: LogSettings = field(default_factory=LogSettings)
    demo: bool = False

    def replace(self, **sections: Any) -> Settings:
        return dataclasses.replace(self, **sections)

    def validate_for_serving(self) -> None:
        """Secrets are optional only in demo mode; a real server without them is a mistake."""
        if self.demo:
            return
        missing = [
            key
            for key, value in (
                ("tokens.secret_keys", self.tokens.secret_keys),
                ("stripe.api_key", self.stripe.api_key),
                ("stripe.webhook_secret", self.stripe.webhook_secret),
            )
            if not value
        ]
        if missing:
            names = ", ".join(f"{m} (GATEWAY_{m.replace('.', '_').upper()})" for m in missing)
            raise ConfigError(f"missing required settings: {names}")
        if DEMO_SECRET in self.tokens.secret_keys:
            raise ConfigError(
                "tokens.secret_keys: the demo secret cannot be used outside demo mode"
            )


def _convert(value: object, hint: Any, key: str, from_env: bool) -> object:
    if hint is Duration:
        return parse_duration(value, key)
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):  # Optional[X]
        inner = [a for a in get_args(hint) if a is not type(None)]
        return None if value in (None, "") else _convert(value, inner[0], key, from_env)
    if origin is tuple:
        if from_env and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(str(v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover


def _build_section(
    cls: type[Any], name: str, data: Mapping[str, object], env: Mapping[str, str]
) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {name}.{unknown[0]} (known: {', '.join(sorted(known))})"
        )
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        key = f"{name}.{f.name}"
        env_name = f"GATEWAY_{name}_{f.name}".upper()
        if env_name in env:
            values[f.name] = _convert(env[env_name], hints[f.name], env_name, from_env=True)
        elif f.name in data:
            values[f.name] = _convert(data[f.name], hints[f.name], key, from_env=False)
    return cls(**values)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    demo: bool = False,
) -> Settings:
    """Read the file (if any), apply environment overrides, and check every value's type.

    ``path`` falls back to ``GATEWAY_CONFIG`` and then to ``./config.toml`` if it exists.
    """
    env = os.environ if env is None else env
    explicit = path is not None or "GATEWAY_CONFIG" in env
    chosen = Path(path if path is not None else env.get("GATEWAY_CONFIG", "config.toml"))
    data: dict[str, Any] = {}
    if chosen.is_file():
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: not valid TOML: {exc}") from None
    elif explicit:
        raise ConfigError(f"config file not found: {chosen}")

    hints = get_type_hints(Settings)
    sections = {f.name for f in dataclasses.fields(Settings) if f.name != "demo"}
    unknown = sorted(set(data) - sections - {"demo"})
    if unknown:
        raise ConfigError(f"unknown config section [{unknown[0]}]")
    built: dict[str, Any] = {}
    for name in sections:
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table")
        built[name] = _build_section(hints[name], name, section, env)
    demo_value = env.get("GATEWAY_DEMO", data.get("demo", demo))
    built["demo"] = bool(_convert(demo_value, bool, "demo", from_env=True)) or demo
    settings = Settings(**built)
    _check_values(settings)
    return settings


# A session's life is stale_after + min_remaining. Stripe refuses an expires_at less than 30
# minutes ahead *when it receives the request*, so exactly 30m fails after a second of latency:
# keep a minute's margin. It accepts at most 24 hours ahead.
MIN_SESSION_LIFETIME = 31 * 60
MAX_SESSION_LIFETIME = 24 * 3600


def _check_values(settings: Settings) -> None:
    checkout = settings.checkout
    lifetime = checkout.stale_after + checkout.min_remaining
    if not MIN_SESSION_LIFETIME <= lifetime <= MAX_SESSION_LIFETIME:
        raise ConfigError(
            "checkout.stale_after + checkout.min_remaining (GATEWAY_CHECKOUT_STALE_AFTER, "
            f"GATEWAY_CHECKOUT_MIN_REMAINING) must be between 31m and 24h, got {lifetime:g}s: "
            "it is each Checkout Session's life, and Stripe wants expires_at 30 minutes to "
            "24 hours ahead when the request reaches it (the extra minute covers latency)"
        )
    if not re.fullmatch(r"[a-z]{3}", checkout.default_currency):
        raise ConfigError("checkout.default_currency: expected a three-letter ISO code like usd")
    if offered(checkout.default_locale) != checkout.default_locale:
        raise ConfigError(
            f"checkout.default_locale: expected one of {', '.join(OFFERED)}, "
            f"got {checkout.default_locale!r}"
        )
    try:
        ZoneInfo(checkout.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "checkout.timezone: expected an IANA time zone name such as Europe/Lisbon or "
            f"America/Sao_Paulo, got {checkout.timezone!r}"
        ) from None
    if settings.stripe.request_deadline <= 0:
        raise ConfigError("stripe.request_deadline: must be more than 0s")
    if not settings.server.public_url.startswith(("http://", "https://")):
        raise ConfigError("server.public_url: expected an http(s) URL")
    if not 0 < settings.server.port < 65536:
        raise ConfigError("server.port: expected 1-65535")
    for entry in settings.admin.api_keys:
        if ":" not in entry:
            raise ConfigError("admin.api_keys: each entry is name:key")
    if settings.admin.max_failures < 1:
        raise ConfigError("admin.max_failures: expected at least 1")
    for key, networks in (
        ("server.trusted_proxies", settings.server.trusted_proxies),
        ("metrics.allow", settings.metrics.allow),
    ):
        for network in networks:
            try:
                ipaddress.ip_network(network.strip(), strict=False)
            except ValueError:
                raise ConfigError(
                    f"{key}: expected addresses or networks such as 10.0.0.0/8, got {network!r}"
                ) from None
    _check_alerts(settings.alerts)
    _check_reminders(settings.reminders)
    if settings.metrics.bearer_token_sha256 and not re.fullmatch(
        r"[0-9a-fA-F]{64}", settings.metrics.bearer_token_sha256
    ):
        raise ConfigError("metrics.bearer_token_sha256: expected the 64 hex digits of a SHA-256")


# The digest's windows are whole seconds from the epoch; one a minute at most, one a week at
# least (services.alerts reaches back a week after a stop).
ALERTS_INTERVALS = (60, 7 * 86400)


def _check_alerts(alerts: AlertsSettings) -> None:
    if alerts.email and not re.fullmatch(
        r"[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]+\.[^@\s<>,;\"]{2,}", alerts.email
    ):
        raise ConfigError(
            f"alerts.email: expected one email address such as treasurer@example.org, "
            f"got {alerts.email!r}"
        )
    low, high = ALERTS_INTERVALS
    if not low <= alerts.interval <= high or not float(alerts.interval).is_integer():
        raise ConfigError(
            f"alerts.interval: expected whole seconds between 1m and 7d, got {alerts.interval:g}s"
        )


def _check_reminders(reminders: RemindersSettings) -> None:
    """The default schedule as links take theirs (domain.reminders), and sending hours that are
    a real window of the day."""
    try:
        parse_steps(reminders.schedule)
    except ReminderError as exc:
        raise ConfigError(f"reminders.schedule: {exc}") from None
    hours = []
    for key, value in (("send_from", reminders.send_from), ("send_until", reminders.send_until)):
        try:
            hours.append(parse_clock(value))
        except ValueError:
            raise ConfigError(
                f"reminders.{key}: expected a time of day like 09:00 (24-hour), got {value!r}"
            ) from None
    if hours[0] >= hours[1]:
        raise ConfigError(
            "reminders.send_from must be earlier in the day than reminders.send_until "
            f"(got {reminders.send_from} and {reminders.send_until})"
        )
