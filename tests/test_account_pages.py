"""The account pages: logging out ends the cookie's token everywhere, every user changes their
own password, the admin lists accounts, deactivates them and resets passwords."""

from __future__ import annotations

from html import unescape

from tests.conftest import assert_problem, login
from tests.test_web import PASSWORD, as_user, page_login, post_form, world  # noqa: F401  (fixture)


async def bearer_me(client, token: str):
    return await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


async def test_logging_out_on_the_page_ends_the_token(client, world):
    await as_user(client, world.buyer)
    token = client.cookies["shop_token"]
    assert (await bearer_me(client, token)).status_code == 200
    r = await post_form(client, "/logout")
    assert r.status_code == 303
    assert_problem(await bearer_me(client, token), 401, "unauthenticated")
    client.cookies.set("shop_token", token)  # a copy of the cookie kept somewhere
    assert (await client.get("/shop")).status_code == 303


async def test_every_user_changes_their_own_password(client, world):
    buyer = world.buyer
    await as_user(client, buyer)
    r = await client.get("/account/password")
    assert r.status_code == 200 and "修改密码" in r.text
    r = await post_form(client, "/account/password", {"old_password": PASSWORD, "new_password": "new-password-1", "new_password_again": "other-one-1"})
    assert r.status_code == 400 and "两次输入的新密码不一致" in r.text
    r = await post_form(client, "/account/password", {"old_password": "wrong-one", "new_password": "new-password-1", "new_password_again": "new-password-1"})
    assert r.status_code == 400 and "当前密码：不正确" in unescape(r.text)
    r = await post_form(client, "/account/password", {"old_password": PASSWORD, "new_password": "short", "new_password_again": "short"})
    assert r.status_code == 400 and "新密码：至少 8 位" in unescape(r.text)
    assert (await buyer.get("/api/me")).status_code == 200  # nothing changed
    old_cookie = client.cookies["shop_token"]
    r = await post_form(client, "/account/password", {"old_password": PASSWORD, "new_password": "new-password-1", "new_password_again": "new-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/account/password?ok=password"
    assert_problem(await buyer.get("/api/me"), 401, "unauthenticated")  # the API token from before
    assert_problem(await bearer_me(client, old_cookie), 401, "unauthenticated")
    assert client.cookies["shop_token"] != old_cookie
    assert (await client.get("/shop")).status_code == 200  # this session goes on with a new token
    await login(client, buyer.user["username"], "new-password-1")


async def test_the_admin_deactivates_and_resets_on_the_page(client, world):
    buyer = world.buyer
    await as_user(client, buyer)
    assert (await client.get("/admin/users")).status_code == 403  # not for buyers
    assert (await page_login(client, "admin", "admin-password")).status_code == 303
    r = await client.get("/admin/users", params={"role": "buyer"})
    assert r.status_code == 200 and buyer.user["username"] in r.text and world.supplier_user.user["username"] not in r.text
    r = await post_form(client, f"/admin/users/{buyer.user['id']}/active", {"active": "0"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/users?ok=saved"
    assert_problem(await buyer.get("/api/me"), 401, "unauthenticated")
    assert "已停用" in (await client.get("/admin/users", params={"q": buyer.user["username"]})).text
    r = await post_form(client, f"/admin/users/{buyer.user['id']}/password", {"password": "short"})
    assert r.status_code == 400
    r = await post_form(client, f"/admin/users/{buyer.user['id']}/active", {"active": "1"})
    assert r.status_code == 303
    r = await post_form(client, f"/admin/users/{buyer.user['id']}/password", {"password": "reset-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/users?ok=reset"
    await login(client, buyer.user["username"], "reset-password-1")
    assert (await post_form(client, "/admin/users/99999/active", {"active": "0"})).status_code == 404
