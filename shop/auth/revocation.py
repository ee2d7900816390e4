"""Tokens ended by logging out: their `jti` is kept until the token would have expired
anyway, where every server process sees it — the database's `shop_revoked_token`, or Redis
when `REDIS_URL` is set.

Checking costs no extra round trip with the database: the query that loads the account on
every request also asks that the token is not revoked (`accounts.load_principal`). With
Redis, a small in-process cache answers for at most `CACHE_SECONDS`, so a burst of requests
with one token asks Redis once, and a revoked token fails everywhere within that second
(at once in the process that revoked it)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from shop.auth.tables import RevokedToken

CACHE_SECONDS = 1.0
CACHE_MAX = 10_000


class RevocationCache:
    """jti -> (revoked?, until when the answer holds), in one process."""

    def __init__(self, ttl: float = CACHE_SECONDS, max_entries: int = CACHE_MAX) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[bool, float]] = {}

    def get(self, jti: str) -> bool | None:
        entry = self._entries.get(jti)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, jti: str, revoked: bool) -> None:
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        # a revoked token stays revoked (its answer may be kept); "not revoked" only for the ttl
        self._entries[jti] = (revoked, now + (3600.0 if revoked else self.ttl))


def _redis_key(jti: str) -> str:
    return f"shop:revoked:{jti}"


async def revoke(jti: str, expires_at: datetime, now: datetime, redis: Any = None) -> None:
    """End the token `jti` (which expires at `expires_at`) everywhere."""
    if redis is not None:
        seconds = max(1, int((expires_at - now).total_seconds()) + 1)
        await redis.set(_redis_key(jti), "1", ex=seconds)
        return
    await RevokedToken.insert(RevokedToken(jti=jti, expires_at=expires_at)).on_conflict(action="DO NOTHING")


async def is_revoked_in_redis(jti: str, redis: Any, cache: RevocationCache) -> bool:
    """The Redis path of the check (the database path is part of loading the account)."""
    known = cache.get(jti)
    if known is not None:
        return known
    revoked = bool(await redis.exists(_redis_key(jti)))
    cache.put(jti, revoked)
    return revoked


async def purge_revoked(now: datetime) -> int:
    """Forget revocations of tokens that expired anyway (the periodic work); how many."""
    gone = await RevokedToken.delete().where(RevokedToken.expires_at < now).returning(RevokedToken.id)
    return len(gone)
