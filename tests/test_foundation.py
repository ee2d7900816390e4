"""Operations endpoints, login, tokens, guards and the shape of every error."""

from __future__ import annotations

import pytest

from tests.conftest import Api, assert_problem, fresh_login_window, login


async def test_health_ready_metrics_schema(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).json() == {"status": "ready"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "shop_requests_total" in metrics.text
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/auth/login" in schema.json()["paths"]


async def test_unknown_route_is_problem_details(client):
    body = assert_problem(await client.get("/api/no-such-thing"), 404, "not_found")
    assert "Traceback" not in str(body)


async def test_login_and_me(client, admin):
    r = await admin.get("/api/me")
    assert r.status_code == 200
    assert r.json() == {"id": r.json()["id"], "username": "admin", "role": "admin", "union_id": None, "supplier_id": None, "approves": False}


async def test_login_refusals(client, admin):
    assert_problem(await client.post("/api/auth/login", json={"username": "admin", "password": "wrong-one"}), 401, "unauthenticated")
    assert_problem(await client.post("/api/auth/login", json={"username": "nobody", "password": "wrong-one"}), 401, "unauthenticated")
    body = assert_problem(
        await client.post("/api/auth/login", json={"username": "admin", "password": "admin-password", "extra": 1}),
        400,
        "validation_failed",
    )
    assert body["errors"][0]["field"] == "extra"
    body = assert_problem(await client.post("/api/auth/login", json={"username": "admin", "password": 5}), 400, "validation_failed")
    assert body["errors"] == [{"field": "password", "message": "Expected `str`, got `int`"}]
    body = assert_problem(await client.post("/api/auth/login", json={"username": "admin"}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "password"
    body = assert_problem(
        await client.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "validation_failed",
    )
    assert body["errors"][0]["field"] == "body"


async def test_bad_and_missing_tokens(client, admin):
    assert_problem(await client.get("/api/me"), 401, "unauthenticated")
    assert_problem(await Api(client, "not-a-token").get("/api/me"), 401, "unauthenticated")
    forged = admin.token[:-4] + ("AAAA" if not admin.token.endswith("AAAA") else "BBBB")
    assert_problem(await Api(client, forged).get("/api/me"), 401, "unauthenticated")


async def test_deactivated_user_token_stops_working(client, admin):
    from shop.auth.tables import User

    await User.update({User.active: False}).where(User.username == "admin")
    assert_problem(await admin.get("/api/me"), 401, "unauthenticated")


async def test_login_rate_limited_per_address_and_username(app, client, monkeypatch):
    import msgspec

    from shop.auth.accounts import create_user

    await create_user("admin", "admin-password", "admin")
    monkeypatch.setattr(app.state, "settings", msgspec.structs.replace(app.state.settings, login_rate_limit=3))
    await fresh_login_window()
    for _ in range(3):
        assert_problem(await client.post("/api/auth/login", json={"username": "admin", "password": "nope-nope"}), 401, "unauthenticated")
    r = await client.post("/api/auth/login", json={"username": "admin", "password": "admin-password"})
    assert_problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60  # seconds to the end of the minute
    # another username from the same address is counted apart
    assert_problem(await client.post("/api/auth/login", json={"username": "other", "password": "nope-nope"}), 401, "unauthenticated")


async def test_admin_creates_users_and_roles_are_enforced(client, admin):
    r = await admin.post("/api/admin/users", json={"username": "auditor1", "password": "short", "role": "admin"})
    body = assert_problem(r, 400, "validation_failed")
    assert body["errors"][0]["field"] == "password"
    assert_problem(
        await admin.post("/api/admin/users", json={"username": "b1", "password": "password-1", "role": "buyer"}),
        400,
        "validation_failed",
    )
    assert_problem(
        await admin.post("/api/admin/users", json={"username": "b1", "password": "password-1", "role": "king"}),
        400,
        "validation_failed",
    )
    assert_problem(
        await admin.post("/api/admin/users", json={"username": "b1", "password": "password-1", "role": "buyer", "union_id": 999}),
        404,
        "not_found",
    )
    r = await admin.post("/api/admin/users", json={"username": "boss2", "password": "password-1", "role": "admin"})
    assert r.status_code == 201, r.text
    assert_problem(
        await admin.post("/api/admin/users", json={"username": "boss2", "password": "password-1", "role": "admin"}),
        409,
        "conflict",
    )
    boss = await login(client, "boss2", "password-1")
    assert (await boss.get("/api/me")).json()["role"] == "admin"
    assert_problem(await client.post("/api/admin/users", json={}), 401, "unauthenticated")


@pytest.mark.parametrize("length", [101])
async def test_over_long_username_is_refused(admin, length):
    r = await admin.post("/api/admin/users", json={"username": "u" * length, "password": "password-1", "role": "admin"})
    assert_problem(r, 400, "validation_failed")
