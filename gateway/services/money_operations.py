"""The money operations a person performs (issue 16 item 3), as one collaborator for the
admin API, the CLI and the console: refunds (:mod:`gateway.services.refunds`), payments made
outside Stripe (:mod:`gateway.services.manual_payments`) and orphan payments
(:mod:`gateway.services.orphans`). Built once, by ``gateway.wiring``."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.services.manual_payments import ManualPayments
from gateway.services.orphans import OrphanPayments
from gateway.services.refunds import Refunds


@dataclass(frozen=True, slots=True)
class MoneyOperations:
    refunds: Refunds
    manual: ManualPayments
    orphans: OrphanPayments
