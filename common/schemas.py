"""What every request body and id shares: unknown fields are refused, ids fit a database INTEGER."""

from __future__ import annotations

from typing import Annotated

import msgspec

ID_MAX = 2**31 - 1
Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every request body: unknown fields are refused."""
