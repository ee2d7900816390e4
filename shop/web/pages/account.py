"""Logging in and out, and the home page that sends each role to its own start."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Template

from shop.auth import accounts, tokens
from shop.auth.accounts import Principal
from shop.web.forms import BASKET_COOKIE
from shop.web.render import HOME, NAV, Page, optional_user, render, safe_next

# --- login ---------------------------------------------------------------------------------


def token_cookie(request: Request, principal: Principal) -> Cookie:
    """The pages' session: a new token for `principal` in an HttpOnly cookie."""
    jwt_auth = request.app.state.jwt_auth
    return Cookie(
        key=jwt_auth.key,
        value=tokens.issue_token(jwt_auth, principal),
        path="/",
        httponly=True,
        max_age=int(jwt_auth.default_token_expiration.total_seconds()),
        secure=jwt_auth.secure,
        samesite=jwt_auth.samesite,
    )


class LoginPages(Page):
    opt = {"exclude_from_auth": True}

    @get("/login")
    async def login_form(
        self, request: Request, next: FromQuery[str | None] = None, expired: FromQuery[str | None] = None
    ) -> Template | Redirect:
        user = await optional_user(request)
        if user is not None:
            return Redirect(path=safe_next(next) or HOME[user.role], status_code=303)
        why = None
        if expired == "1":
            why = "登录已过期，请重新登录。" + ("登录后将回到刚才的页面。" if safe_next(next) else "")
        return render(request, "login.html", user=None, username="", next=safe_next(next) or "", nav=NAV[None], expired=why)

    @post("/login", status_code=200)
    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        target = safe_next(str(form.get("next") or ""))
        if not username or not password:
            return render(
                request, "login.html", status_code=400, username=username, next=target or "", error="请输入用户名和密码。", expired=None
            )
        if len(username) > 100 or len(password) > 128:
            return render(request, "login.html", status_code=401, username="", next=target or "", error="用户名或密码错误。", expired=None)
        try:
            principal = await accounts.login_attempt(request, username, password)
        except ProblemDetailsException as exc:
            code = (exc.extra or {}).get("code") if isinstance(exc.extra, dict) else None
            message = "登录尝试次数过多，请一分钟后再试。" if code == "rate_limited" else "用户名或密码错误。"
            return render(
                request, "login.html", status_code=exc.status_code, username=username, next=target or "", error=message,
                headers=exc.headers, expired=None,
            )
        return Redirect(path=target or HOME[principal.role], status_code=303, cookies=[token_cookie(request, principal)])

    @post("/logout", status_code=200)
    async def logout(self, request: Request) -> Redirect:
        """Ends the cookie's token everywhere (as `POST /api/auth/logout` does), then the cookie."""
        jwt_auth = request.app.state.jwt_auth
        raw = request.cookies.get(jwt_auth.key, "").split(" ")[-1]
        if raw and (token := tokens.decode(raw, jwt_auth)) is not None:
            await tokens.revoke_token(token, request.app.state)
        gone = [
            Cookie(key=jwt_auth.key, value="", path="/", max_age=0, expires=0, httponly=True, samesite=jwt_auth.samesite, secure=jwt_auth.secure),
            Cookie(key=BASKET_COOKIE, value="", path="/", max_age=0, expires=0, httponly=True, samesite="strict"),
        ]
        return Redirect(path="/login?ok=bye", status_code=303, cookies=gone)


class HomePage(Page):
    @get("/")
    async def home(self, request: Request) -> Redirect:
        return Redirect(path=HOME.get(request.user.role, "/products"), status_code=303)
