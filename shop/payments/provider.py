"""The payment seam: the rest of the shop asks a provider to start, and later refund,
a payment without knowing which one is in use."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import msgspec


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

    async def cancel(self, order: dict) -> None:
        """Make the order's way to pay unusable (its reference), once its cancel or expiry
        has committed. Raises PaymentProviderError when the provider refuses or cannot be reached."""

    async def refund(self, order: dict, amount_fen: int, idempotency_key: str) -> RefundResult:
        """Give `amount_fen` of the order's payment back to the payer. Called outside any
        database transaction; the same idempotency key never refunds twice. Raises
        PaymentProviderError when the provider refuses or cannot be reached."""
