"""The console's one search box: what a treasurer typed, understood, and the links it narrows to.

:meth:`LinkSearch.understand` reads a query once and says how it read it (:class:`Understood`:
a kind, a sentence for the page, and a :class:`LinkMatch` that :class:`LinkListing` applies
with the other filters). What a query can be, and what each costs at 100,000 links:

==========================  ======================================  ============================
query                       matches                                 read from
==========================  ======================================  ============================
``lk_…`` (a link id)        that link                               the primary key
a payment URL or token      its link, after the signature is        no database for the token;
                            checked (a forged one finds nothing)    then the primary key
``cs_…``                    the link of the order with that         ``orders.stripe_session_id``
                            Checkout session                        (unique)
``pi_…``                    the link of the order with that         ``ix_orders_payment_intent_id``
                            payment intent
``ch_…``                    nothing: charge ids are not stored      —
                            (the result says so; the support desk
                            asks Stripe for the charge's payment)
``ref:U12-``                references starting with it (case       ``ix_links_ref`` (a range)
                            counts)
text without ``@``          references starting with it when any    ``ix_links_ref`` (one probe)
                            does; else payer names containing it
                            (any case) or emails starting with it   a scan (see below)
``name:Sam``                names containing it, emails starting    a scan
                            with it
``sam@example.org``         that email, any case                    a scan (see below)
``sam@exa``                 emails starting with it, any case       a scan
==========================  ======================================  ============================

Payer names and emails have no index: a name "contains" cannot use a B-tree at all, and
``links.email`` has none. An index on ``lower(email)`` (``text_pattern_ops`` on PostgreSQL)
makes the email searches a range read; the conditions below are written so that it is used as
soon as it exists. Without it, the list fetches the matches once, stopping after
:data:`~gateway.services.link_listing.DRIVE_CAP` + 1 of them, then reads a page of them; a
query with few or no matches reads every link once. Measured at 100,000 links on this shared
2-core machine under a load of 10-13 (in-process, search and list, median of 5): an email 200-400
ms on SQLite and 35-110 ms on PostgreSQL without the index, 4 ms and 10-25 ms with it (created by
hand for the measure); a name 330-500 ms and 200 ms (a scan either way: PostgreSQL's ``pg_trgm``
GIN index would serve ``ILIKE '%…%'``); a reference prefix 6 and 33 ms, a link id, ``cs_`` or
``pi_`` 3 and 11 ms. Queries are at most :data:`MAX_QUERY` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order
from gateway.adapters.tokens import LINK_ID, TokenError, TokenProblem, TokenService
from gateway.domain.errors import ValidationFailed
from gateway.domain.links import text_problem
from gateway.domain.text import Text

MAX_QUERY = 320  # the longest email address; any payment URL this gateway makes is shorter

KINDS = (
    "link_id",
    "payment_url",
    "token",
    "stripe_session",
    "payment_intent",
    "charge",
    "reference",
    "name",
    "email",
    "email_prefix",
)

_STRIPE_ID = re.compile(r"(cs|pi|ch)_[A-Za-z0-9_]{1,250}")
_TOKEN_LIKE = re.compile(r"lk_[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*")
_URL_TOKEN = re.compile(r"/pay/([^/?#\s]*)")
# Quotes and brackets a query often arrives wrapped in (copied from an email or a chat).
_WRAPPING = " \t\r\n<>\"'`«»“”‘’"


@dataclass(frozen=True, slots=True)
class LinkMatch:
    """What a search narrows the list to. Exactly one of the fields is set."""

    link_ids: tuple[str, ...] | None = None  # exactly these links (few)
    ref_prefix: str | None = None  # references starting with it, case counts
    email: str | None = None  # lower-cased: this address, any case
    email_prefix: str | None = None  # lower-cased: addresses starting with it, any case
    name: str | None = None  # names containing it (any case), or emails starting with it
    name_emails: bool = True  # False: ``name`` matches names only (see LinkSearch.understand)

    def condition(self, *, sqlite: bool) -> sa.ColumnElement[bool]:
        """The SQL condition on ``links`` (other than ``link_ids``, which the list reads by id)."""
        if self.link_ids is not None:
            return Link.id.in_(self.link_ids) if self.link_ids else sa.false()
        if self.ref_prefix is not None:
            return sa.and_(
                Link.ref.like(like_prefix(self.ref_prefix), escape="\\"),
                *_range(Link.ref, self.ref_prefix, sqlite=sqlite),
            )
        if self.email is not None:
            return sa.func.lower(Link.email) == self.email
        if self.email_prefix is not None:
            return _email_starts(self.email_prefix, sqlite=sqlite)
        if self.name is not None:
            named = Link.name.ilike("%" + _escape_like(self.name) + "%", escape="\\")
            if not self.name_emails:
                return named
            return sa.or_(named, _email_starts(self.name.lower(), sqlite=sqlite))
        raise ValueError("an empty LinkMatch")

    def describe(self) -> str:
        """The match in a few plain words (the export's audit entry)."""
        for field in ("link_ids", "ref_prefix", "email", "email_prefix", "name"):
            value = getattr(self, field)
            if value is not None:
                shown = ",".join(value) if isinstance(value, tuple) else value
                return f"{field}={shown}"
        return ""


@dataclass(frozen=True, slots=True)
class Understood:
    """How a query was read: ``label`` says it on the page ("Reference prefix 'U12-'");
    ``match`` is None when nothing can match, and ``problem`` then says why."""

    query: str
    kind: str
    label: Text
    match: LinkMatch | None
    problem: Text | None = None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_prefix(prefix: str) -> str:
    return _escape_like(prefix) + "%"


def successor(prefix: str) -> str | None:
    """The smallest string after every string that starts with ``prefix`` (code point order,
    which is UTF-8's byte order and SQLite's BINARY collation), or None."""
    for cut in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[cut]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:cut] + chr(point)
    return None


def _range(column: Any, prefix: str, *, sqlite: bool) -> list[sa.ColumnElement[bool]]:
    """``prefix <= column < successor(prefix)`` in code point order, as a B-tree reads it (on
    PostgreSQL with the byte-wise operators a ``*_pattern_ops`` index serves, whatever the
    database's collation)."""
    upper = successor(prefix)
    if sqlite:
        low: sa.ColumnElement[bool] = column >= prefix
        high = (column < upper) if upper is not None else None
    else:
        low = column.op("~>=~", is_comparison=True)(prefix)
        high = column.op("~<~", is_comparison=True)(upper) if upper is not None else None
    return [low] if high is None else [low, high]


def _email_starts(prefix: str, *, sqlite: bool) -> sa.ColumnElement[bool]:
    return sa.and_(*_range(sa.func.lower(Link.email), prefix, sqlite=sqlite))


_LINK_BY_SESSION = (
    sa.select(Order.link_id).where(Order.stripe_session_id == sa.bindparam("v")).limit(50)
)
_LINK_BY_INTENT = (
    sa.select(Order.link_id).where(Order.payment_intent_id == sa.bindparam("v")).limit(50)
)


class LinkSearch:
    def __init__(self, db: Database, tokens: TokenService) -> None:
        self._db = db
        self._tokens = tokens

    async def understand(self, raw: str, *, emails: bool = True) -> Understood | None:
        """The query read (None when it is empty). Raises ``ValidationFailed`` (field ``q``)
        when it is too long or holds control characters.

        ``emails=False`` for a reader who sees payers' addresses masked (a viewer): a whole
        address still finds its link, but nothing matches the start of one (typing one more
        character at a time would spell every address out)."""
        if len(raw) > MAX_QUERY:
            raise ValidationFailed(
                {"q": Text("a search of at most %(count)s characters", count=MAX_QUERY)}
            )
        query = raw.strip(_WRAPPING)
        if not query:
            return None
        problem = text_problem(query)
        if problem:
            raise ValidationFailed({"q": problem})
        lowered = query.lower()
        if lowered.startswith("ref:"):
            return self._reference(query, query[4:].strip())
        if lowered.startswith("name:"):
            return self._name(query, query[5:].strip(), emails=emails)
        url = _URL_TOKEN.search(query)
        if url is not None or lowered.startswith(("http://", "https://")):
            return self._token(query, url.group(1) if url else "", kind="payment_url")
        if _TOKEN_LIKE.fullmatch(query):
            return self._token(query, query, kind="token")
        if LINK_ID.fullmatch(query):
            return Understood(
                query, "link_id", Text("Link id %(id)s", id=query), LinkMatch(link_ids=(query,))
            )
        if _STRIPE_ID.fullmatch(query):
            return await self._stripe(query)
        if "@" in query:
            local, _, domain = lowered.partition("@")
            if local and "." in domain.strip(".") and " " not in lowered:
                return Understood(
                    query,
                    "email",
                    Text("Payer email %(email)s", email=query),
                    LinkMatch(email=lowered),
                )
            if not emails:
                return self._nothing(
                    query,
                    "email_prefix",
                    Text("Payer email starting with '%(prefix)s'", prefix=query),
                    Text("your role finds a payer by their whole email address only"),
                )
            return Understood(
                query,
                "email_prefix",
                Text("Payer email starting with '%(prefix)s'", prefix=query),
                LinkMatch(email_prefix=lowered),
            )
        if " " not in query and await self._some_ref_starts(query):
            return self._reference(query, query)
        return self._name(query, query, emails=emails)

    # --- each kind ---------------------------------------------------------------------------

    def _reference(self, query: str, prefix: str) -> Understood:
        if not prefix:
            return self._nothing(
                query, "reference", Text("Reference"), Text("type a reference after ref:")
            )
        return Understood(
            query,
            "reference",
            Text("Reference prefix '%(prefix)s'", prefix=prefix),
            LinkMatch(ref_prefix=prefix),
        )

    def _name(self, query: str, name: str, *, emails: bool = True) -> Understood:
        if not name:
            return self._nothing(query, "name", Text("Payer name"), Text("type a name after name:"))
        label = (
            Text("Payer name containing '%(text)s', or email starting with it", text=name)
            if emails
            else Text("Payer name containing '%(text)s'", text=name)
        )
        return Understood(query, "name", label, LinkMatch(name=name, name_emails=emails))

    def _token(self, query: str, token: str, *, kind: str) -> Understood:
        label = Text("Payment URL") if kind == "payment_url" else Text("Payment token")
        if not token:
            return self._nothing(query, kind, label, Text("this URL is not a payment link"))
        try:
            verified = self._tokens.verify(token)
            link_id = verified.link_id
        except TokenError as exc:
            if exc.problem is TokenProblem.EXPIRED and exc.link_id is not None:
                link_id = exc.link_id  # genuine, only old: it still names its link
            elif exc.problem is TokenProblem.TRUNCATED:
                return self._nothing(
                    query, kind, label, Text("this link is cut short: paste the whole link")
                )
            else:
                return self._nothing(
                    query,
                    kind,
                    label,
                    Text("this link was not made by this gateway, or was changed: no link matches"),
                )
        shown = (
            Text("Payment URL of link %(id)s", id=link_id)
            if kind == "payment_url"
            else Text("Payment token of link %(id)s", id=link_id)
        )
        return Understood(query, kind, shown, LinkMatch(link_ids=(link_id,)))

    async def _stripe(self, query: str) -> Understood:
        if query.startswith("ch_"):
            return self._nothing(
                query,
                "charge",
                Text("Stripe charge %(id)s", id=query),
                Text(
                    "charge ids (ch_…) are not stored here: the Support page asks Stripe which "
                    "payment a charge belongs to"
                ),
            )
        if query.startswith("cs_"):
            kind, statement = "stripe_session", _LINK_BY_SESSION
            label = Text("Stripe Checkout session %(id)s", id=query)
        else:
            kind, statement = "payment_intent", _LINK_BY_INTENT
            label = Text("Stripe payment %(id)s", id=query)
        async with self._db.read() as session:
            ids = (await session.execute(statement, {"v": query})).scalars().all()
        return Understood(query, kind, label, LinkMatch(link_ids=tuple(sorted(set(ids)))))

    async def _some_ref_starts(self, prefix: str) -> bool:
        """Whether any reference starts with ``prefix``: one index probe."""
        match = LinkMatch(ref_prefix=prefix)
        async with self._db.read() as session:
            found = await session.execute(
                sa.select(Link.id).where(match.condition(sqlite=self._db.is_sqlite)).limit(1)
            )
            return found.first() is not None

    @staticmethod
    def _nothing(query: str, kind: str, label: Text, problem: Text) -> Understood:
        return Understood(query, kind, label, None, problem)
