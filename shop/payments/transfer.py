"""对公转账: the branch pays from its union account quoting the order's reference; an
admin confirms that the money arrived. A transfer confirmed after its order was
cancelled or expired is still recorded (a late payment, `needs_refund`), so that money
received always has a record and can be refunded."""

from __future__ import annotations

from datetime import datetime, timedelta

from common.errors import DomainError, invalid
from shop.orders import lifecycle
from shop.orders.states import OrderAction
from shop.payments.provider import PaymentStart, RefundResult
from shop.payments.settle import pay, record_late_payment
from shop.settings import Settings


class TransferProvider:
    name = "transfer"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def hold_time(self) -> timedelta:
        return timedelta(days=self.settings.transfer_hold_days)

    def reference_for(self, order_id: int) -> str:
        return f"XFBF{order_id:08d}"

    async def start(self, order_id: int, lines: list[dict], expires_at: datetime) -> PaymentStart:
        return PaymentStart(reference=self.reference_for(order_id))

    async def cancel(self, order: dict) -> None:
        """A bank transfer cannot be stopped from here: one that still arrives is recorded
        as a late payment and refunded (the cancel page says so)."""

    async def refund(self, order: dict, amount_fen: int, idempotency_key: str) -> RefundResult:
        """No money moves here: the refund is recorded as owed and the shop's finance
        office pays it back to the branch's union account."""
        return RefundResult(status="owed", reference=idempotency_key)


def _same_reference(given: str, expected: str) -> bool:
    """Bank statements vary in case and spacing; the reference itself must match."""
    return "".join(given.split()).upper() == "".join(expected.split()).upper()


async def confirm_transfer(order_id: int, reference: str, *, actor_id: int, now: datetime) -> None:
    """An admin saw the branch's transfer arrive: the order is paid and its holds captured."""
    from shop.orders.tables import Order

    async with Order._meta.db.transaction():
        order = await lifecycle.lock(order_id)
        if order is None:
            raise DomainError("not_found", f"order {order_id} does not exist")
        if order["provider"] != "transfer":
            raise DomainError(
                "invalid_state",
                f"order {order_id} is paid through {order['provider']}, not by bank transfer",
                order_status=order["status"],
            )
        if not _same_reference(reference, order["payment_reference"]):
            raise invalid("reference", "does not match the order's transfer reference")
        said = f"transfer {order['payment_reference']}"
        if lifecycle.allows(order["status"], OrderAction.transfer_confirmed):
            await pay(order, OrderAction.transfer_confirmed, now, actor_id=actor_id, detail=said)
        elif lifecycle.allows(order["status"], OrderAction.late_payment) and not order["needs_refund"]:
            # the money came after the order was cancelled or expired: it is recorded, for
            # an admin to refund; nothing is taken from any member's quota
            await record_late_payment(order, now, actor_id=actor_id, detail=said)
        else:
            raise lifecycle.refused(order, OrderAction.transfer_confirmed)
