"""The payment seam: the rest of the shop asks a provider to start, and later refund,
a payment without knowing which one is in use."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from shop.settings import Settings


class PaymentStart(msgspec.Struct, kw_only=True):
    reference: str
    url: str = ""


class RefundResult(msgspec.Struct, kw_only=True):
    """What the provider made of a refund: `succeeded` (money is on its way back) or
    `owed` (no money moved: the shop pays it back by bank transfer)."""

    status: str
    reference: str = ""


class PaymentProviderError(Exception):
    """The provider did not do what was asked.

    `definite` is True when the provider answered and refused (nothing happened there,
    and asking again with the same idempotency key gives the same refusal); False when
    we cannot know (no answer: the request may or may not have been carried out)."""

    def __init__(self, message: str, *, definite: bool) -> None:
        super().__init__(message)
        self.definite = definite


class Provider(Protocol):
    name: str

    def hold_time(self) -> timedelta:
        """How long an unpaid order holds quota and stock."""

    def reference_for(self, order_id: int) -> str:
        """The reference known inside the order's transaction ("" when the provider gives one later)."""

    async def start(self, order_id: int, lines: list[dict], expires_at: datetime) -> PaymentStart:
        """Called after the order's transaction has committed, never inside it."""

    async def refund(self, order: dict, amount_fen: int, idempotency_key: str) -> RefundResult:
        """Give `amount_fen` of the order's payment back to the payer. Called outside any
        database transaction; the same idempotency key never refunds twice. Raises
        PaymentProviderError when the provider refuses or cannot be reached."""


class TransferProvider:
    """对公转账: the branch pays from its union account quoting the order's reference;
    an admin confirms the money arrived."""

    name = "transfer"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def hold_time(self) -> timedelta:
        return timedelta(days=self.settings.transfer_hold_days)

    def reference_for(self, order_id: int) -> str:
        return f"XFBF{order_id:08d}"

    async def start(self, order_id: int, lines: list[dict], expires_at: datetime) -> PaymentStart:
        return PaymentStart(reference=self.reference_for(order_id))

    async def refund(self, order: dict, amount_fen: int, idempotency_key: str) -> RefundResult:
        """No money moves here: the refund is recorded as owed and the shop's finance
        office pays it back to the branch's union account."""
        return RefundResult(status="owed", reference=idempotency_key)

    def bank(self) -> dict[str, str]:
        return {
            "bank_name": self.settings.bank_name,
            "account_name": self.settings.bank_account_name,
            "account_no": self.settings.bank_account_no,
        }


def provider_for(settings: Settings) -> Provider:
    """The provider new orders are paid with (API handlers pass `request.app.state.settings`)."""
    return provider_named(settings.payment_provider, settings)


def provider_named(name: str, settings: Settings) -> Provider:
    """The provider an existing order was paid with (refunds go back the way money came),
    whatever new orders use now."""
    if name == "stripe":
        from shop.stripe_provider import StripeProvider

        return StripeProvider(settings)
    return TransferProvider(settings)
