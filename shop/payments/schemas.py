"""msgspec structs for the payment endpoints."""

from __future__ import annotations

from typing import Annotated

import msgspec

from common.schemas import Body


class ConfirmTransferIn(Body):
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class WebhookOut(msgspec.Struct, kw_only=True):
    received: bool
    outcome: str
