"""The login limit: at most `LOGIN_RATE_LIMIT` attempts a minute per client address and
username, counted in the app's `login_attempts` store."""

from __future__ import annotations

from typing import Any

from shop.errors import problem
from shop.settings import Settings


async def count_login_attempt(request: Any, username: str) -> None:
    """Count this attempt; over the limit, refuse it (`rate_limited`) before any password is checked."""
    settings: Settings = request.app.state.settings
    store = request.app.stores.get("login_attempts")
    client = request.client.host if request.client else "unknown"
    key = f"{client}|{username}"
    attempts = int(await store.get(key) or 0) + 1
    if attempts > settings.login_rate_limit:
        raise problem("rate_limited", "too many login attempts; wait a minute", headers={"Retry-After": "60"})
    ttl = await store.expires_in(key)
    await store.set(key, str(attempts), expires_in=ttl if ttl and ttl > 0 else 60)
