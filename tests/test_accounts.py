"""Tokens that end: logging out, changing or resetting a password, deactivating; the
admin's list of accounts; each change in the admin's trail. In-process (the same app
answers every request); tests/test_auth_server.py repeats what matters across workers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shop.auth.tables import AccountEvent, User
from tests.conftest import Api, assert_problem, login

PASSWORD = "password-123"


@pytest.fixture
async def people(client, admin, make_user):
    """The admin, two buyers, two suppliers and an auditor: accounts to list and to end."""
    from tests.world import build_world

    return await build_world(make_user, admin)


async def events(username: str) -> list[dict]:
    user = await User.select(User.id).where(User.username == username).first()
    return await AccountEvent.select(AccountEvent.action, AccountEvent.actor).where(AccountEvent.user == user["id"]).order_by(AccountEvent.id)


async def test_logout_ends_that_token_only(client, admin):
    other = await login(client, "admin", "admin-password")
    r = await admin.post("/api/auth/logout")
    assert r.status_code == 204, r.text
    assert_problem(await admin.get("/api/me"), 401, "unauthenticated")
    assert_problem(await admin.post("/api/auth/logout"), 401, "unauthenticated")
    assert (await other.get("/api/me")).status_code == 200  # another login of the same account
    from shop.auth.tables import RevokedToken

    assert await RevokedToken.count() == 1
    assert_problem(await Api(client).post("/api/auth/logout"), 401, "unauthenticated")


async def test_tokens_without_jti_or_version_are_refused(app, client, admin):
    """Tokens of the old shape (no jti, no version) cannot be revoked: they no longer count."""
    me = (await admin.get("/api/me")).json()
    jwt_auth = app.state.jwt_auth
    bare = jwt_auth.create_token(identifier=str(me["id"]))
    assert_problem(await Api(client, bare).get("/api/me"), 401, "unauthenticated")
    no_jti = jwt_auth.create_token(identifier=str(me["id"]), token_extras={"ver": 0})
    assert_problem(await Api(client, no_jti).get("/api/me"), 401, "unauthenticated")
    stale = jwt_auth.create_token(identifier=str(me["id"]), token_unique_jwt_id="x" * 32, token_extras={"ver": 7})
    assert_problem(await Api(client, stale).get("/api/me"), 401, "unauthenticated")


async def test_password_change_ends_every_older_token(client, people):
    buyer = people.buyer
    name = buyer.user["username"]
    second = await login(client, name, PASSWORD)
    # refusals change nothing
    body = assert_problem(await buyer.post("/api/me/password", json={"old_password": "wrong-one", "new_password": "new-password-1"}), 400, "validation_failed")
    assert body["errors"] == [{"field": "old_password", "message": "does not match the current password"}]
    for bad in (
        {"old_password": PASSWORD, "new_password": "short"},
        {"old_password": PASSWORD, "new_password": "x" * 129},
        {"old_password": PASSWORD},
        {"old_password": PASSWORD, "new_password": "new-password-1", "extra": 1},
        {"old_password": PASSWORD, "new_password": 12345678},
    ):
        assert_problem(await buyer.post("/api/me/password", json=bad), 400, "validation_failed")
    assert (await buyer.get("/api/me")).status_code == 200
    assert (await second.get("/api/me")).status_code == 200
    assert [e["action"] for e in await events(name)] == ["created"]
    assert_problem(await Api(client).post("/api/me/password", json={"old_password": PASSWORD, "new_password": "new-password-1"}), 401, "unauthenticated")

    r = await buyer.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "new-password-1"})
    assert r.status_code == 204, r.text
    assert_problem(await buyer.get("/api/me"), 401, "unauthenticated")
    assert_problem(await second.get("/api/me"), 401, "unauthenticated")
    assert_problem(await client.post("/api/auth/login", json={"username": name, "password": PASSWORD}), 401, "unauthenticated")
    fresh = await login(client, name, "new-password-1")
    assert (await fresh.get("/api/me")).json()["username"] == name
    # the holder's own change: recorded, with no actor, so not in the admin's trail
    assert (await events(name))[-1] == {"action": "password_changed", "actor": None}
    trail = (await people.admin.get("/api/audit/events")).json()["items"]
    assert not [i for i in trail if i["action"] == "user_password_changed"]


async def test_password_change_counts_against_the_login_limit(app, client, people, monkeypatch):
    import msgspec

    from tests.conftest import fresh_login_window

    monkeypatch.setattr(app.state, "settings", msgspec.structs.replace(app.state.settings, login_rate_limit=2))
    from shop.auth.tables import LoginAttempt

    await fresh_login_window()
    await LoginAttempt.delete(force=True)  # forget the logins that made the accounts
    for _ in range(2):
        r = await people.buyer.post("/api/me/password", json={"old_password": "guess-guess", "new_password": "new-password-1"})
        assert_problem(r, 400, "validation_failed")
    r = await people.buyer.post("/api/me/password", json={"old_password": PASSWORD, "new_password": "new-password-1"})
    assert_problem(r, 429, "rate_limited")
    assert (await people.buyer.get("/api/me")).status_code == 200  # nothing changed


async def test_admin_deactivates_and_reactivates(client, people):
    admin, buyer = people.admin, people.buyer
    name, uid = buyer.user["username"], buyer.user["id"]
    r = await admin.patch(f"/api/admin/users/{uid}", json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json() == {**buyer.user, "active": False}
    assert_problem(await buyer.get("/api/me"), 401, "unauthenticated")
    assert_problem(await client.post("/api/auth/login", json={"username": name, "password": PASSWORD}), 401, "unauthenticated")
    r = await admin.patch(f"/api/admin/users/{uid}", json={"active": True})
    assert r.status_code == 200 and r.json()["active"] is True
    assert_problem(await buyer.get("/api/me"), 401, "unauthenticated")  # reactivating brings no old token back
    assert (await (await login(client, name, PASSWORD)).get("/api/me")).status_code == 200
    me = (await admin.get("/api/me")).json()
    assert [e["action"] for e in await events(name)] == ["created", "deactivated", "activated"]
    trail = (await admin.get("/api/audit/events")).json()["items"]
    mine = [(i["action"], i["actor"]["username"]) for i in trail if i["subject"] == f"user {name}"]
    assert mine[:2] == [("user_activated", me["username"]), ("user_deactivated", me["username"])]


async def test_admin_resets_a_password(client, people):
    admin, supplier = people.admin, people.supplier_user
    name, uid = supplier.user["username"], supplier.user["id"]
    r = await admin.patch(f"/api/admin/users/{uid}", json={"password": "reset-password-1"})
    assert r.status_code == 200 and r.json()["active"] is True
    assert_problem(await supplier.get("/api/me"), 401, "unauthenticated")
    assert_problem(await client.post("/api/auth/login", json={"username": name, "password": PASSWORD}), 401, "unauthenticated")
    await login(client, name, "reset-password-1")
    assert (await events(name))[-1]["action"] == "password_reset"
    assert (await admin.get("/api/audit/events", params={"action": "user_password_reset"})).json()["total"] == 1


async def test_bad_patches_change_nothing(client, people):
    admin, buyer = people.admin, people.buyer
    uid = buyer.user["id"]
    for bad in ({}, {"active": "no"}, {"password": "short"}, {"password": None, "active": None}, {"role": "admin"}, {"active": 1}):
        assert_problem(await admin.patch(f"/api/admin/users/{uid}", json=bad), 400, "validation_failed")
    assert_problem(await admin.patch("/api/admin/users/99999", json={"active": False}), 404, "not_found")
    assert_problem(await admin.patch(f"/api/admin/users/{2**40}", json={"active": False}), 404, "not_found")
    me = (await admin.get("/api/me")).json()
    assert_problem(await admin.patch(f"/api/admin/users/{me['id']}", json={"active": False}), 403, "forbidden")
    assert (await buyer.get("/api/me")).status_code == 200
    assert (await admin.get("/api/me")).status_code == 200
    assert [e["action"] for e in await events(buyer.user["username"])] == ["created"]
    # not an admin
    assert_problem(await buyer.patch(f"/api/admin/users/{uid}", json={"active": False}), 403, "forbidden")
    assert_problem(await buyer.get("/api/admin/users"), 403, "forbidden")
    assert_problem(await people.auditor.get("/api/admin/users"), 403, "forbidden")
    assert_problem(await Api(client).get("/api/admin/users"), 401, "unauthenticated")


async def test_admin_lists_accounts_with_filters(client, people):
    admin = people.admin
    body = (await admin.get("/api/admin/users")).json()
    everyone = {u["username"]: u for u in body["items"]}
    assert body["total"] == len(body["items"]) == 6  # the admin, two buyers, two suppliers, an auditor
    assert everyone["admin"]["role"] == "admin" and everyone["admin"]["active"] is True
    assert everyone[people.buyer.user["username"]] == {**people.buyer.user, "active": True}
    buyers = (await admin.get("/api/admin/users", params={"role": "buyer"})).json()
    assert buyers["total"] == 2 and {u["role"] for u in buyers["items"]} == {"buyer"}
    await admin.patch(f"/api/admin/users/{people.other_buyer.user['id']}", json={"active": False})
    buyers = (await admin.get("/api/admin/users", params={"role": "buyer"})).json()
    assert sorted(u["active"] for u in buyers["items"]) == [False, True]
    found = (await admin.get("/api/admin/users", params={"q": people.auditor.user["username"][-6:].upper()})).json()
    assert [u["username"] for u in found["items"]] == [people.auditor.user["username"]]
    assert (await admin.get("/api/admin/users", params={"q": "%"})).json()["total"] == 0  # LIKE wildcards are text
    assert (await admin.get("/api/admin/users", params={"q": "_"})).json()["total"] == 0
    page = (await admin.get("/api/admin/users", params={"limit": 2, "offset": 2})).json()
    assert page["total"] == 6 and [u["id"] for u in page["items"]] == [u["id"] for u in body["items"]][2:4]
    for bad in ({"role": "king"}, {"limit": 0}, {"limit": 201}, {"offset": -1}, {"q": "x" * 101}):
        assert_problem(await admin.get("/api/admin/users", params=bad), 400, "validation_failed")


async def test_the_periodic_work_forgets_ended_windows_and_expired_revocations(app, client, admin):
    from common.clock import utcnow
    from shop.auth.ratelimit import attempt_key, count_attempt, window_of
    from shop.auth.tables import LoginAttempt, RevokedToken
    from shop.jobs import tick

    now = utcnow()
    await count_attempt(attempt_key("10.0.0.1", "someone"), now - timedelta(minutes=5))
    await count_attempt(attempt_key("10.0.0.1", "someone"), now)
    await admin.post("/api/auth/logout")
    await RevokedToken.insert(RevokedToken(jti="gone", expires_at=now - timedelta(seconds=1)))
    done = await tick(now, app.state.settings)
    assert done["login_windows_purged"] >= 1 and done["revocations_purged"] == 1
    assert await LoginAttempt.count().where(LoginAttempt.window_start < window_of(now)[0]) == 0
    assert await LoginAttempt.count().where(LoginAttempt.key == attempt_key("10.0.0.1", "someone")) == 1  # this minute's
    assert await RevokedToken.count() == 1
    assert_problem(await admin.get("/api/me"), 401, "unauthenticated")  # still revoked: not yet expired


def test_the_revocation_cache_forgets_good_answers_within_its_ttl():
    import time

    from shop.auth.revocation import RevocationCache

    cache = RevocationCache(ttl=0.05, max_entries=3)
    cache.put("good", False)
    cache.put("bad", True)
    assert cache.get("good") is False and cache.get("bad") is True and cache.get("unknown") is None
    time.sleep(0.06)
    assert cache.get("good") is None  # asked again: it may have been revoked meanwhile
    assert cache.get("bad") is True  # a revoked token stays revoked
    for jti in ("a", "b", "c", "d"):
        cache.put(jti, False)
    assert cache.get("d") is False  # full: what expired made room


async def test_a_token_verified_before_still_expires_and_a_forged_one_is_refused(app, client, make_user):
    """Each token string's signature is verified once per process (shop.auth.tokens.VerifiedToken):
    the same string still stops working when it expires, and a string changed in any way is
    verified anew (and refused)."""
    import asyncio
    import uuid

    fresh = await make_user("admin")  # a new account: its tokens are of version 0
    me = (await fresh.get("/api/me")).json()
    short = app.state.jwt_auth.create_token(
        identifier=str(me["id"]), token_expiration=timedelta(seconds=2),
        token_unique_jwt_id=uuid.uuid4().hex, token_extras={"ver": 0},
    )
    api = Api(client, short)
    assert (await api.get("/api/me")).status_code == 200
    assert (await api.get("/api/me")).status_code == 200  # the remembered verification
    head, payload, signature = short.split(".")
    forged = Api(client, f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}")
    assert_problem(await forged.get("/api/me"), 401, "unauthenticated")
    await asyncio.sleep(3.1)  # JWT expiry is in whole seconds
    assert_problem(await api.get("/api/me"), 401, "unauthenticated")
