"""The login limit (and the members' link pages' limit, `count_address`): at most `LOGIN_RATE_LIMIT` attempts a minute per client address and
username, right or wrong, counted where every server process and worker sees the same
number, by one atomic step per attempt: an `INSERT … ON CONFLICT … DO UPDATE … RETURNING`
in the database, or `INCR` in Redis when `REDIS_URL` is set. Windows are fixed minutes;
the periodic work deletes the database's past ones (Redis expires its keys itself)."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone
from typing import Any

from common.clock import utcnow
from shop.auth.tables import LoginAttempt
from shop.errors import problem

WINDOW_SECONDS = 60

_COUNT = (
    'INSERT INTO shop_login_attempt ("key", "window_start", "attempts") VALUES ({}, {}, 1) '
    'ON CONFLICT ("key", "window_start") DO UPDATE SET "attempts" = shop_login_attempt."attempts" + 1 '
    'RETURNING "attempts"'
)


def attempt_key(client: str, username: str) -> str:
    """What is counted: the address and the username, as a fixed-length digest (no NUL or
    over-long text reaches the database, no plain usernames are kept)."""
    return hashlib.sha256(f"{client}|{username}".encode("utf-8", "surrogatepass")).hexdigest()


def window_of(now: datetime) -> tuple[datetime, int]:
    """The start of the minute `now` falls in, and the whole seconds left until its end (1..60)."""
    epoch = now.timestamp()
    start = math.floor(epoch / WINDOW_SECONDS) * WINDOW_SECONDS
    return datetime.fromtimestamp(start, timezone.utc), max(1, math.ceil(start + WINDOW_SECONDS - epoch))


async def count_attempt(key: str, now: datetime, redis: Any = None) -> tuple[int, int]:
    """Count one attempt for `key`: (attempts in this window including this one, seconds left)."""
    start, left = window_of(now)
    if redis is not None:
        name = f"shop:login:{key}:{int(start.timestamp())}"
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, 2 * WINDOW_SECONDS)
            attempts, _ = await pipe.execute()
        return int(attempts), left
    rows = await LoginAttempt.raw(_COUNT, key, start)
    return int(rows[0]["attempts"]), left


async def count_login_attempt(request: Any, username: str) -> None:
    """Count this attempt; over the limit, refuse it (`rate_limited`, `Retry-After`: seconds to
    the window's end) before any password is checked."""
    state = request.app.state
    client = request.client.host if request.client else "unknown"
    attempts, left = await count_attempt(attempt_key(client, username), utcnow(), state.redis)
    if attempts > state.settings.login_rate_limit:
        raise problem("rate_limited", "too many login attempts; wait for the next minute", headers={"Retry-After": str(left)})


async def count_address(request: Any, purpose: str, limit: int) -> None:
    """Count one request of this client address for `purpose` (the members' link pages: one
    count over the page and the API), in the same windows as the login limit; over `limit`
    a minute: `rate_limited` with `Retry-After`, before anything is looked up."""
    client = request.client.host if request.client else "unknown"
    # "\x00" cannot start a username: these counts never meet a login's
    attempts, left = await count_attempt(attempt_key(client, "\x00" + purpose), utcnow(), request.app.state.redis)
    if attempts > limit:
        raise problem("rate_limited", "too many requests from this address; wait for the next minute", headers={"Retry-After": str(left)})


async def purge_attempts(now: datetime) -> int:
    """Delete the database's windows that ended (the periodic work); how many."""
    start, _ = window_of(now)
    gone = await LoginAttempt.delete().where(LoginAttempt.window_start < start).returning(LoginAttempt.id)
    return len(gone)
