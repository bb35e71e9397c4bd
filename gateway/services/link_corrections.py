"""A corrected link in place of a wrong one (the console's "Issue a corrected link", issue 15
item 8): the old link is revoked and a new one, with what the treasurer corrected, is issued
with ``replaces`` pointing at it, so both timelines tell the story.

Order of the steps, for money's sake: the old link is revoked FIRST (``LinkService.revoke``: its
pending attempt canceled, its Stripe session expired), then the new link is issued. A crash in
between leaves the old link revoked and no new one: nobody can pay twice, the console shows the
link revoked, and the treasurer issues the correction again (a revoked link can be corrected).
The other order could leave two live links for one payment.

A paid link, or one whose payment is on its way, is never "corrected": refund it instead (the
next issue). A payment that arrives on the old link while it is being revoked wins (it is
recorded), and then no new link is issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.domain.errors import GatewayError
from gateway.domain.links import NewLink
from gateway.domain.payments import PaymentProvider
from gateway.domain.text import Text
from gateway.services.link_listing import LinkListing
from gateway.services.links import IssuedLink, LinkService

# What a corrected link cannot replace: the money has arrived or is on its way.
NOT_CORRECTABLE: Final = ("paid", "processing")


class LinkNotCorrectable(GatewayError):
    """The link is paid (or a payment is in progress): correcting it would ask twice."""

    def __init__(self, link_id: str, status: str) -> None:
        super().__init__(
            Text(
                "link %(id)s is %(status)s; a paid link is not replaced (refund it instead)",
                id=link_id,
                status=status,
            )
        )
        self.status = status


@dataclass(frozen=True, slots=True)
class Correction:
    old_id: str
    new: IssuedLink
    revoked_now: bool  # False: the old link had been revoked before


async def correct_link(
    link_id: str,
    new: NewLink,
    *,
    links: LinkService,
    listing: LinkListing,
    provider: PaymentProvider | None,
    actor: str,
    reason: str = "",
) -> Correction:
    """Revoke ``link_id`` (with ``reason``, else "replaced by a corrected link") and issue
    ``new`` in its place. Raises :class:`~gateway.domain.errors.NotFound`, or
    :class:`LinkNotCorrectable` (nothing changed) when the link is paid or being paid."""
    status = await listing.status_of(link_id)
    if status in NOT_CORRECTABLE:
        raise LinkNotCorrectable(link_id, status)
    why = reason.strip() or "replaced by a corrected link"
    revoked_now = await links.revoke(link_id, actor=actor, reason=why, provider=provider)
    # A payment that raced the revocation is recorded and wins: then no second link.
    status = await listing.status_of(link_id)
    if status in NOT_CORRECTABLE:
        raise LinkNotCorrectable(link_id, status)
    issued = await links.issue(new, actor=actor, replaces=link_id)
    return Correction(link_id, issued, revoked_now)
