"""msgspec structs for the payment endpoints."""

from __future__ import annotations

from typing import Annotated

import msgspec

from common.schemas import Body, Name


class ConfirmTransferIn(Body):
    reference: Annotated[Name, msgspec.Meta(min_length=1, max_length=64)]


class WebhookOut(msgspec.Struct, kw_only=True):
    received: bool
    outcome: str
