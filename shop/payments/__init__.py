"""Payments: the provider seam (`provider.py`), bank transfer and Stripe behind it, and
the events that tell the shop money arrived (`webhooks.py`, `transfer.confirm_transfer`)."""

from __future__ import annotations

from shop.payments.provider import Provider
from shop.payments.stripe import StripeProvider
from shop.payments.transfer import TransferProvider
from shop.settings import Settings


def provider_for(settings: Settings) -> Provider:
    """The provider new orders are paid with."""
    return provider_named(settings.payment_provider, settings)


def provider_named(name: str, settings: Settings) -> Provider:
    """The provider an existing order was paid with (refunds go back the way money came),
    whatever new orders use now."""
    if name == "stripe":
        return StripeProvider(settings)
    return TransferProvider(settings)
