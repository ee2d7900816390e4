"""Time as the shop counts it: budget years are Asia/Shanghai calendar years."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def local(at: datetime) -> datetime:
    """A stored moment shown in Shanghai time."""
    return at.astimezone(SHANGHAI)
