"""API writes are authenticated by Bearer, or by the pages' cookie with the CSRF token;
the cookie alone is refused (403) and changes nothing. JSON bodies must say they are JSON."""

from __future__ import annotations

import json

from shop.orders.tables import Order
from tests.conftest import assert_problem
from tests.test_web import as_user, token, world  # noqa: F401  (fixture)


def _order(world) -> dict:
    return {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}


async def test_the_cookie_alone_cannot_write_to_the_api(client, world):
    await as_user(client, world.buyer)  # the client now holds the pages' login cookie
    r = await client.post("/api/orders", json=_order(world), headers={"Idempotency-Key": "cookie-only"})
    assert_problem(r, 403, "forbidden")
    r = await client.post("/api/branch/members", json={"member_no": "C1", "name": "曹一"})
    assert_problem(r, 403, "forbidden")
    r = await client.post("/api/orders", json=_order(world), headers={"Idempotency-Key": "cookie-bad", "x-csrftoken": "forged"})
    assert_problem(r, 403, "forbidden")
    assert await Order.count() == 0
    # reads with the cookie still work (the pages link to exports)
    assert (await client.get("/api/orders")).status_code == 200
    # the cookie with the CSRF token is a page's own request: allowed
    r = await client.post(
        "/api/orders", json=_order(world), headers={"Idempotency-Key": "cookie-csrf", "x-csrftoken": await token(client)}
    )
    assert r.status_code == 201, r.text
    # Bearer needs no CSRF token, whatever cookies come along
    r = await client.post(
        "/api/orders", json=_order(world), headers={"Idempotency-Key": "bearer", "Authorization": f"Bearer {world.buyer.token}"}
    )
    assert r.status_code == 201, r.text


async def test_json_bodies_must_be_sent_as_json(client, world):
    headers = {"Authorization": f"Bearer {world.buyer.token}", "Idempotency-Key": "plain"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        sent = {**headers, **({"content-type": content_type} if content_type else {})}
        r = await client.post("/api/orders", content=json.dumps(_order(world)).encode(), headers=sent)
        assert_problem(r, 415, "unsupported_media_type")
    assert await Order.count() == 0
    r = await client.post("/api/orders", content=json.dumps(_order(world)).encode(), headers={**headers, "content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text
    r = await client.post("/api/auth/login", content=b'{"username": "x", "password": "y"}', headers={"content-type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")
