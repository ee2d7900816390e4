"""Input the schema should refuse never reaches the database (API.md "Robustness of every
endpoint"): ids beyond a database INTEGER, negative ids, NUL and other control characters,
bodies that are not UTF-8 — each is a problem detail, never a 500, and changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import assert_problem
from tests.world import build_world

TOO_BIG = 2**31

PATHS = [
    "/api/orders/{id}",
    "/api/orders/{id}/events",
    "/api/orders/{id}/refunds",
    "/api/orders/{id}/distribution",
    "/api/products/{id}",
    "/api/admin/products/{id}",
    "/api/admin/suppliers/{id}",
    "/api/unions/{id}",
    "/api/unions/{id}/budget",
    "/api/admin/targets/{id}/2026",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bad", [TOO_BIG, 2**63, -1, 0])
async def test_an_id_out_of_range_in_a_path_is_not_found(admin, path, bad):
    assert_problem(await admin.get(path.format(id=bad)), 404, "not_found")


@pytest.mark.parametrize(
    "url",
    [
        f"/api/orders/{TOO_BIG}/confirm-transfer",
        f"/api/admin/products/{TOO_BIG}/approve",
        "/api/orders/-5/confirm-transfer",
    ],
)
async def test_an_action_on_an_id_out_of_range_is_not_found(admin, url):
    assert_problem(await admin.post(url, json={"reference": "x"}), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        f"/api/audit/ledger?member_id={TOO_BIG}",
        f"/api/audit/ledger?order_id={TOO_BIG}",
        "/api/audit/ledger?member_id=-1",
        f"/api/reports/targets?union_id={TOO_BIG}",
        f"/api/audit/members?union_id={TOO_BIG}",
        f"/api/products?supplier_id={TOO_BIG}",
        f"/api/orders?offset={2**63}",
        f"/api/products?offset={2**63}",
        f"/api/admin/users?offset={2**63}",
        "/api/products?q=a%00b",
        "/api/products?category=a%00b",
        "/api/admin/users?q=a%00b",
        "/api/regions/a%00b",
    ],
)
async def test_a_bad_query_is_refused(admin, query):
    body = assert_problem(await admin.get(query), 400, "validation_failed")
    assert body["errors"]


@pytest.mark.parametrize(
    "url, body",
    [
        ("/api/admin/regions", {"code": "nul", "name": "a\x00b", "province": "x", "paired_with": []}),
        ("/api/admin/unions", {"code": "NUL", "name": "a\x00b", "level": "federation"}),
        ("/api/admin/suppliers", {"name": "a\x01b", "regions": []}),
        ("/api/admin/users", {"username": "nul", "password": "password-123", "role": "admin", "email": "a\x00@b"}),
        ("/api/auth/login", {"username": "a\x00b", "password": "x"}),
    ],
)
async def test_control_characters_in_text_are_refused(admin, url, body):
    assert_problem(await admin.post(url, json=body), 400, "validation_failed")


async def test_control_characters_in_product_text_and_reasons(make_user, admin):
    w = await build_world(make_user, admin)
    supplier = w.supplier_user
    product = {"title": "茶\x00", "region": "bijie", "category": "tea", "unit": "盒", "price_fen": 100, "stock": 1}
    assert_problem(await supplier.post("/api/supplier/products", json=product), 400, "validation_failed")
    r = await supplier.post("/api/supplier/products", json={**product, "title": "茶", "description": "一\n二\t三"})
    assert r.status_code == 201, r.text
    reason = {"reason": "no\x00"}
    assert_problem(await admin.post(f"/api/admin/products/{w.products['tea']}/delist", json=reason), 400, "validation_failed")
    assert (await admin.get(f"/api/products/{w.products['tea']}")).json()["status"] == "listed"
    member = {"member_no": "Z1", "name": "张\x00三"}
    assert_problem(await w.buyer.post("/api/branch/members", json=member), 400, "validation_failed")


async def test_a_body_that_is_not_utf8_is_refused(admin):
    r = await admin.client.post(
        "/api/admin/regions",
        content=b'{"code": "bad", "name": "\xff\xfe", "province": "x", "paired_with": []}',
        headers={**admin._headers(), "Content-Type": "application/json"},
    )
    assert_problem(r, 400, "validation_failed")
    assert (await admin.get("/api/regions/bad")).status_code == 404


@pytest.mark.parametrize("bad", [TOO_BIG, -1])
async def test_a_page_for_an_id_out_of_range_is_not_found(client, bad):
    r = await client.get(f"/products/{bad}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("url", ["/products?q=a%00b", "/admin/users?q=a%00b"])
async def test_a_page_refuses_nul_in_its_search(admin, url):
    r = await admin.get(url)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
