"""Login tokens: JWTs (Bearer for the API, an HttpOnly cookie for the pages) whose
subject is the user id; every request loads the account, so a deactivated user's
tokens stop working at once."""

from __future__ import annotations

from datetime import timedelta

from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTCookieAuth, Token

from shop.auth.accounts import Principal, load_principal
from shop.settings import Settings


async def _retrieve_user(token: Token, connection: ASGIConnection) -> Principal | None:
    try:
        return await load_principal(int(token.sub))
    except ValueError:
        return None


async def principal_of(token: str, jwt_auth: JWTCookieAuth[Principal]) -> Principal | None:
    """The account behind a raw token (the pages read their cookie with it)."""
    decoded = Token.decode(token, jwt_auth.token_secret, jwt_auth.algorithm)
    return await _retrieve_user(decoded, None)  # type: ignore[arg-type]


def build_jwt_auth(settings: Settings) -> JWTCookieAuth[Principal]:
    return JWTCookieAuth[Principal](
        retrieve_user_handler=_retrieve_user,
        token_secret=settings.secret_key,
        default_token_expiration=timedelta(hours=settings.token_ttl_hours),
        exclude_opt_key="exclude_from_auth",
        exclude=["^/health", "^/ready", "^/metrics", "^/schema", "^/static"],
        key="shop_token",
        samesite="strict",
        secure=settings.public_url.startswith("https"),
    )
