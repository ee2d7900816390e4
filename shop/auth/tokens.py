"""Login tokens: JWTs (Bearer for the API, an HttpOnly cookie for the pages) whose subject
is the user id. Each carries a unique `jti` (logging out revokes that one token) and the
account's `token_version` as `ver` (a password change, a reset or a deactivation raises the
account's version: every older token stops working).

Every request loads the account anyway; that one query also compares the version and, when
revocations live in the database, asks that the jti is not revoked. With Redis the jti is
looked up there, behind a cache of at most a second (`shop/auth/revocation.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import JWTCookieAuth, Token

from common.clock import utcnow
from common.schemas import ID_MAX
from shop.auth import revocation
from shop.auth.accounts import Principal, load_principal
from shop.settings import Settings

COOKIE = "shop_token"  # the pages' login cookie


class VerifiedToken(Token):
    """Litestar's token, each token string's signature verified once per process: the same
    string decodes to the same token, so later requests with it skip pyjwt (its checks cost
    more CPU than the account's query on a busy route). Its expiry is checked on every use;
    whether it still counts (account active, version, not logged out) is asked of the
    database on every request all the same (`principal_for`)."""

    _verified: ClassVar[dict[tuple[str, str, str], Token]] = {}
    MAX_REMEMBERED: ClassVar[int] = 10_000

    @classmethod
    def decode(  # type: ignore[override]
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: Any = None,
        issuer: Any = None,
        require_claims: Any = None,
        verify_exp: bool = True,
        verify_nbf: bool = True,
        strict_audience: bool = False,
    ) -> Token:
        plain = audience is None and issuer is None and not require_claims and verify_exp and verify_nbf and not strict_audience
        key = (encoded_token, secret, algorithm)
        if plain and (token := cls._verified.get(key)) is not None:
            if token.exp > datetime.now(timezone.utc):
                return token
            del cls._verified[key]
        token = super().decode(encoded_token, secret, algorithm, audience, issuer, require_claims, verify_exp, verify_nbf, strict_audience)
        if plain and "nbf" not in token.extras:
            if len(cls._verified) >= cls.MAX_REMEMBERED:
                cls._verified.clear()
            cls._verified[key] = token
        return token


def issue_token(jwt_auth: JWTCookieAuth[Principal], principal: Principal) -> str:
    """A new token for `principal` (loaded just now, so its token_version is current)."""
    return jwt_auth.create_token(
        identifier=str(principal.id),
        token_unique_jwt_id=uuid.uuid4().hex,
        token_extras={"ver": principal.token_version},
    )


async def principal_for(token: Token, state: Any) -> Principal | None:
    """The account behind a decoded token, if the token still counts (`state`: the app's)."""
    try:
        user_id = int(token.sub)
    except ValueError:
        return None
    version = token.extras.get("ver")
    jti = token.jti
    if not 1 <= user_id <= ID_MAX or type(version) is not int or not isinstance(jti, str) or not jti:
        return None  # not one of ours (tokens from before versions and jtis included: log in again)
    if state.redis is not None:
        if await revocation.is_revoked_in_redis(jti, state.redis, state.revocations):
            return None
        return await load_principal(user_id, token_version=version)
    return await load_principal(user_id, token_version=version, unless_revoked=jti)


async def _retrieve_user(token: Token, connection: ASGIConnection) -> Principal | None:
    return await principal_for(token, connection.app.state)


def decode(raw: str, jwt_auth: JWTCookieAuth[Principal]) -> Token | None:
    """A raw token (the pages' cookie) decoded and verified, or None."""
    try:
        return jwt_auth.token_cls.decode(raw, jwt_auth.token_secret, jwt_auth.algorithm)
    except NotAuthorizedException:
        return None


async def principal_of(raw: str, state: Any) -> Principal | None:
    """The account behind a raw token (the pages read their cookie with it)."""
    token = decode(raw, state.jwt_auth)
    return await principal_for(token, state) if token is not None else None


async def principal_of_request(request: Request) -> Principal | None:
    """Who is asking on a route the token middleware lets through (a public one): the user of a
    valid `Authorization: Bearer` token, else of the pages' cookie, else None."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return user
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raw = request.cookies.get(COOKIE, "").split(" ")[-1]
    if not raw.strip():
        return None
    try:
        return await principal_of(raw.strip(), request.app.state)
    except (NotAuthorizedException, ValueError):
        return None


async def revoke_token(token: Token, state: Any) -> None:
    """Log out: this token no longer works, in any process (within a second with Redis)."""
    if isinstance(token.jti, str) and token.jti:
        await revocation.revoke(token.jti, token.exp, utcnow(), state.redis)
        state.revocations.put(token.jti, True)


def build_jwt_auth(settings: Settings) -> JWTCookieAuth[Principal]:
    return JWTCookieAuth[Principal](
        retrieve_user_handler=_retrieve_user,
        token_secret=settings.secret_key,
        token_cls=VerifiedToken,
        default_token_expiration=timedelta(hours=settings.token_ttl_hours),
        exclude_opt_key="exclude_from_auth",
        exclude=["^/health", "^/ready", "^/metrics", "^/schema", "^/static"],
        key=COOKIE,
        samesite="strict",
        secure=settings.public_url.startswith("https"),
    )
