"""The catalog: regions, suppliers, products, the listing review, stock and seeding.

Over HTTP against the real app and database; stock and seeding through the service
functions the orders code and `shop seed` call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_problem, unique

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

PRODUCT = {
    "title": "毕节高山绿茶 250克",
    "region": "bijie",
    "category": "tea",
    "unit": "罐",
    "price_fen": 6800,
    "stock": 100,
    "description": "乌蒙山区高山云雾茶园春茶，明前采摘。",
}
PRODUCT_FIELDS = {"id", "title", "region", "category", "unit", "price_fen", "stock", "supplier_id", "status", "description"}

# The review's legal moves, written out independently of catalog.service.TRANSITIONS.
LEGAL = {
    ("draft", "submit"): "pending_review",
    ("rejected", "submit"): "pending_review",
    ("pending_review", "approve"): "listed",
    ("pending_review", "reject"): "rejected",
    ("listed", "delist"): "delisted",
}
STATES = ("draft", "pending_review", "listed", "rejected", "delisted")
ACTIONS = ("submit", "approve", "reject", "delist")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


async def snapshot() -> list[dict]:
    """Every catalog row, to show that a refusal changed nothing."""
    from catalog.tables import Product, Region, RegionPairing, Supplier, SupplierRegion

    rows = []
    for table in (Region, RegionPairing, Supplier, SupplierRegion, Product):
        rows.append([dict(r) for r in await table.select().order_by(table._meta.primary_key)])
    return rows


async def add_union(code: str = "", level: str = "branch") -> int:
    from budgets.tables import Union

    rows = await Union.insert(Union(code=code or unique("U-").upper(), name="测试工会", level=level, path="")).returning(Union.id)
    return rows[0]["id"]


@pytest.fixture
async def world(admin, make_user):
    """Three regions, two suppliers (A: bijie + maoming, B: heyuan) with a user each."""
    regions = [
        {"code": "bijie", "name": "毕节", "province": "贵州", "paired_with": ["GZ"]},
        {"code": "maoming", "name": "茂名", "province": "广东", "paired_with": ["MM", "GZ"]},
        {"code": "heyuan", "name": "河源", "province": "广东", "paired_with": ["SZ"]},
    ]
    for region in regions:
        r = await admin.post("/api/admin/regions", json=region)
        assert r.status_code == 201, r.text
    a = await admin.post("/api/admin/suppliers", json={"name": "毕节农业合作社", "regions": ["bijie", "maoming"]})
    b = await admin.post("/api/admin/suppliers", json={"name": "河源万绿湖生态农业", "regions": ["heyuan"]})
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)

    class W:
        pass

    w = W()
    w.admin = admin
    w.supplier_a_id, w.supplier_b_id = a.json()["id"], b.json()["id"]
    w.sup_a = await make_user("supplier", supplier_id=w.supplier_a_id)
    w.sup_b = await make_user("supplier", supplier_id=w.supplier_b_id)
    return w


async def new_product(sup, **overrides) -> dict:
    r = await sup.post("/api/supplier/products", json={**PRODUCT, **overrides})
    assert r.status_code == 201, r.text
    return r.json()


async def product_in_state(w, state: str, sup=None, **overrides) -> dict:
    """A product of supplier A (or `sup`) driven through the API to `state`."""
    sup = sup or w.sup_a
    p = await new_product(sup, **overrides)
    steps = {
        "draft": [],
        "pending_review": [(sup, "/api/supplier/products/{}/submit", None)],
        "listed": [(sup, "/api/supplier/products/{}/submit", None), (w.admin, "/api/admin/products/{}/approve", None)],
        "rejected": [(sup, "/api/supplier/products/{}/submit", None), (w.admin, "/api/admin/products/{}/reject", {"reason": "图片不清晰"})],
        "delisted": [
            (sup, "/api/supplier/products/{}/submit", None),
            (w.admin, "/api/admin/products/{}/approve", None),
            (w.admin, "/api/admin/products/{}/delist", {"reason": "食品安全抽检"}),
        ],
    }[state]
    for api, url, body in steps:
        r = await api.post(url.format(p["id"]), json=body)
        assert r.status_code == 200, r.text
        p = r.json()
    assert p["status"] == state
    return p


async def action(w, product_id: int, name: str):
    if name == "submit":
        return await w.sup_a.post(f"/api/supplier/products/{product_id}/submit")
    body = {"reason": "不符合要求"} if name in ("reject", "delist") else None
    return await w.admin.post(f"/api/admin/products/{product_id}/{name}", json=body)


# ---------------------------------------------------------------------------
# categories and regions
# ---------------------------------------------------------------------------


async def test_categories_are_public_and_fixed(client):
    r = await client.get("/api/categories")
    assert r.status_code == 200
    items = r.json()["items"]
    assert {"code": "fruit", "name": "水果"} in items and {"code": "herbal", "name": "南药滋补"} in items
    assert [i["code"] for i in items] == ["fruit", "tea", "grain_oil", "dried", "aquatic", "meat_egg", "herbal", "snack", "other"]


async def test_regions_created_by_admin_and_listed_publicly(admin, anon):
    r = await admin.post("/api/admin/regions", json={"code": "maoming", "name": "茂名", "province": "广东", "paired_with": ["MM", "GZ", "GZ"]})
    assert r.status_code == 201, r.text
    assert r.json() == {"code": "maoming", "name": "茂名", "province": "广东", "paired_with": ["GZ", "MM"]}
    r = await admin.post("/api/admin/regions", json={"code": "bijie", "name": "毕节", "province": "贵州"})
    assert r.status_code == 201 and r.json()["paired_with"] == []
    before = await snapshot()
    assert_problem(await admin.post("/api/admin/regions", json={"code": "maoming", "name": "另一个", "province": "广东", "paired_with": ["SZ"]}), 409, "conflict")
    assert await snapshot() == before
    r = await anon.get("/api/regions")
    assert r.status_code == 200
    assert r.json() == {
        "items": [
            {"code": "bijie", "name": "毕节", "province": "贵州", "paired_with": []},
            {"code": "maoming", "name": "茂名", "province": "广东", "paired_with": ["GZ", "MM"]},
        ],
        "total": 2,
    }
    assert (await anon.get("/api/regions?limit=1&offset=1")).json()["items"][0]["code"] == "maoming"
    assert (await anon.get("/api/regions/bijie")).json()["name"] == "毕节"
    assert_problem(await anon.get("/api/regions/nowhere"), 404, "not_found")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "Bijie", "name": "毕节", "province": "贵州"}, "code"),
        ({"code": "b" * 33, "name": "毕节", "province": "贵州"}, "code"),
        ({"code": "", "name": "毕节", "province": "贵州"}, "code"),
        ({"code": "bijie", "name": "", "province": "贵州"}, "name"),
        ({"code": "bijie", "name": "   ", "province": "贵州"}, "name"),
        ({"code": "bijie", "name": "毕" * 51, "province": "贵州"}, "name"),
        ({"code": "bijie", "name": "毕节"}, "province"),
        ({"code": "bijie", "name": "毕节", "province": "贵州", "paired_with": ["gz"]}, "paired_with"),
        ({"code": "bijie", "name": "毕节", "province": "贵州", "paired_with": "GZ"}, "paired_with"),
        ({"code": "bijie", "name": "毕节", "province": "贵州", "colour": "red"}, "colour"),
    ],
)
async def test_region_bad_input(admin, body, field):
    body_ = assert_problem(await admin.post("/api/admin/regions", json=body), 400, "validation_failed")
    assert body_["errors"][0]["field"].startswith(field), body_
    assert (await admin.get("/api/regions")).json()["total"] == 0


async def test_suppliers(world, admin, anon):
    r = await admin.get("/api/admin/suppliers")
    assert r.status_code == 200
    assert r.json() == {
        "items": [
            {"id": world.supplier_a_id, "name": "毕节农业合作社", "regions": ["bijie", "maoming"]},
            {"id": world.supplier_b_id, "name": "河源万绿湖生态农业", "regions": ["heyuan"]},
        ],
        "total": 2,
    }
    assert (await admin.get(f"/api/admin/suppliers/{world.supplier_b_id}")).json()["name"] == "河源万绿湖生态农业"
    assert_problem(await admin.get("/api/admin/suppliers/99999"), 404, "not_found")
    me = await world.sup_a.get("/api/supplier/me")
    assert me.status_code == 200
    assert me.json() == {"id": world.supplier_a_id, "name": "毕节农业合作社", "regions": ["bijie", "maoming"]}

    before = await snapshot()
    body = assert_problem(await admin.post("/api/admin/suppliers", json={"name": "新供应商", "regions": ["bijie", "atlantis"]}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "regions" and "atlantis" in body["errors"][0]["message"]
    body = assert_problem(await admin.post("/api/admin/suppliers", json={"name": "新供应商", "regions": []}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "regions"
    body = assert_problem(await admin.post("/api/admin/suppliers", json={"name": "", "regions": ["bijie"]}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "name"
    body = assert_problem(await admin.post("/api/admin/suppliers", json={"name": "新" * 101, "regions": ["bijie"]}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "name"
    assert_problem(await admin.post("/api/admin/suppliers", json={"name": "毕节农业合作社", "regions": ["heyuan"]}), 409, "conflict")
    assert await snapshot() == before
    assert_problem(await anon.get("/api/supplier/me"), 401, "unauthenticated")


# ---------------------------------------------------------------------------
# who may reach what
# ---------------------------------------------------------------------------


async def test_supplier_and_admin_routes_need_their_roles(world, anon, make_user):
    buyer = await make_user("buyer", union_id=await add_union())
    auditor = await make_user("auditor", union_id=await add_union(level="district"))
    p = await new_product(world.sup_a)
    supplier_calls = [
        ("get", "/api/supplier/me", None),
        ("get", "/api/supplier/products", None),
        ("post", "/api/supplier/products", PRODUCT),
        ("get", f"/api/supplier/products/{p['id']}", None),
        ("patch", f"/api/supplier/products/{p['id']}", {"price_fen": 1}),
        ("post", f"/api/supplier/products/{p['id']}/submit", None),
    ]
    admin_calls = [
        ("post", "/api/admin/regions", {"code": "ganzi", "name": "甘孜", "province": "四川"}),
        ("post", "/api/admin/suppliers", {"name": "x", "regions": ["bijie"]}),
        ("get", "/api/admin/suppliers", None),
        ("get", "/api/admin/reviews", None),
        ("get", "/api/admin/products", None),
        ("post", f"/api/admin/products/{p['id']}/approve", None),
        ("post", f"/api/admin/products/{p['id']}/reject", {"reason": "x"}),
        ("post", f"/api/admin/products/{p['id']}/delist", {"reason": "x"}),
    ]
    before = await snapshot()
    for method, url, body in supplier_calls + admin_calls:
        kw = {"json": body} if body is not None else {}
        assert_problem(await getattr(anon, method)(url, **kw), 401, "unauthenticated")
    for who in (buyer, auditor, world.admin):
        for method, url, body in supplier_calls:
            kw = {"json": body} if body is not None else {}
            assert_problem(await getattr(who, method)(url, **kw), 403, "forbidden")
    for who in (buyer, auditor, world.sup_a):
        for method, url, body in admin_calls:
            kw = {"json": body} if body is not None else {}
            assert_problem(await getattr(who, method)(url, **kw), 403, "forbidden")
    assert await snapshot() == before


# ---------------------------------------------------------------------------
# products: creating and editing
# ---------------------------------------------------------------------------


async def test_supplier_creates_a_draft(world):
    r = await world.sup_a.post("/api/supplier/products", json={**PRODUCT, "title": "  毕节高山绿茶 250克  "})
    assert r.status_code == 201, r.text
    p = r.json()
    assert PRODUCT_FIELDS <= set(p)
    assert {k: p[k] for k in PRODUCT} == PRODUCT  # the title was stripped
    assert p["status"] == "draft" and p["supplier_id"] == world.supplier_a_id
    assert p["supplier_name"] == "毕节农业合作社" and p["region_name"] == "毕节" and p["category_name"] == "茶叶"
    assert p["updated_at"].endswith("+08:00")
    got = await world.sup_a.get(f"/api/supplier/products/{p['id']}")
    assert got.json() == p
    # description may be left out
    body = {k: v for k, v in PRODUCT.items() if k != "description"}
    assert (await world.sup_a.post("/api/supplier/products", json=body)).json()["description"] == ""


async def test_supplier_region_must_be_certified(world):
    before = await snapshot()
    assert_problem(await world.sup_a.post("/api/supplier/products", json={**PRODUCT, "region": "heyuan"}), 403, "forbidden")
    body = assert_problem(await world.sup_a.post("/api/supplier/products", json={**PRODUCT, "region": "atlantis"}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "region"
    assert await snapshot() == before
    p = await new_product(world.sup_a)
    before = await snapshot()
    assert_problem(await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"region": "heyuan"}), 403, "forbidden")
    assert await snapshot() == before
    r = await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"region": "maoming"})
    assert r.status_code == 200 and r.json()["region"] == "maoming"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"price_fen": -1}, "price_fen"),
        ({"price_fen": 0}, "price_fen"),
        ({"price_fen": 68.5}, "price_fen"),
        ({"price_fen": 6800.0}, "price_fen"),
        ({"price_fen": True}, "price_fen"),
        ({"price_fen": "6800"}, "price_fen"),
        ({"price_fen": None}, "price_fen"),
        ({"price_fen": 100_000_01}, "price_fen"),
        ({"price_fen": 10**30}, "price_fen"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"stock": 1_000_001}, "stock"),
        ({"stock": False}, "stock"),
        ({"title": ""}, "title"),
        ({"title": "    "}, "title"),
        ({"title": "茶" * 61}, "title"),
        ({"title": 42}, "title"),
        ({"unit": "箱" * 9}, "unit"),
        ({"unit": ""}, "unit"),
        ({"description": "好" * 2001}, "description"),
        ({"category": "vegetables"}, "category"),
        ({"region": "Bijie"}, "region"),
        ({"colour": "green"}, "colour"),
    ],
)
async def test_product_bad_input_on_create_and_patch(world, change, field):
    p = await new_product(world.sup_a)
    before = await snapshot()
    body = assert_problem(await world.sup_a.post("/api/supplier/products", json={**PRODUCT, **change}), 400, "validation_failed")
    assert body["errors"][0]["field"] == field, body
    body = assert_problem(await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json=change), 400, "validation_failed")
    assert body["errors"][0]["field"] == field, body
    assert await snapshot() == before


@pytest.mark.parametrize("missing", ["title", "region", "category", "unit", "price_fen", "stock"])
async def test_product_missing_field(world, missing):
    body = assert_problem(
        await world.sup_a.post("/api/supplier/products", json={k: v for k, v in PRODUCT.items() if k != missing}),
        400,
        "validation_failed",
    )
    assert body["errors"][0]["field"] == missing
    assert (await world.sup_a.get("/api/supplier/products")).json()["total"] == 0


async def test_malformed_and_empty_bodies(world):
    p = await new_product(world.sup_a)
    before = await snapshot()
    headers = {"content-type": "application/json"}
    for method, url in (("post", "/api/supplier/products"), ("patch", f"/api/supplier/products/{p['id']}")):
        r = await getattr(world.sup_a, method)(url, content=b'{"title": "x",', headers=headers)
        assert assert_problem(r, 400, "validation_failed")["errors"][0]["field"] == "body"
        r = await getattr(world.sup_a, method)(url, content=b"[1, 2]", headers=headers)
        assert_problem(r, 400, "validation_failed")
    body = assert_problem(await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "body"
    for url in (f"/api/admin/products/{p['id']}/reject", f"/api/admin/products/{p['id']}/delist"):
        body = assert_problem(await world.admin.post(url, json={}), 400, "validation_failed")
        assert body["errors"][0]["field"] == "reason"
        body = assert_problem(await world.admin.post(url, json={"reason": "   "}), 400, "validation_failed")
        assert body["errors"][0]["field"] == "reason"
        body = assert_problem(await world.admin.post(url, json={"reason": "理" * 201}), 400, "validation_failed")
        assert body["errors"][0]["field"] == "reason"
    assert await snapshot() == before


async def test_patch_changes_fields(world):
    p = await new_product(world.sup_a)
    r = await world.sup_a.patch(
        f"/api/supplier/products/{p['id']}",
        json={"title": "毕节明前绿茶 250克", "category": "other", "unit": "盒", "price_fen": 7200, "stock": 0, "description": ""},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["title"], got["category"], got["unit"], got["price_fen"], got["stock"], got["description"]) == (
        "毕节明前绿茶 250克", "other", "盒", 7200, 0, "",
    )  # fmt: skip
    assert got["status"] == "draft"
    assert (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json() == got


async def test_a_supplier_cannot_touch_another_suppliers_product(world):
    p = await product_in_state(world, "draft", sup=world.sup_b, region="heyuan")
    before = await snapshot()
    assert_problem(await world.sup_a.get(f"/api/supplier/products/{p['id']}"), 403, "forbidden")
    assert_problem(await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"price_fen": 1}), 403, "forbidden")
    assert_problem(await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit"), 403, "forbidden")
    assert await snapshot() == before
    assert (await world.sup_a.get("/api/supplier/products")).json() == {"items": [], "total": 0}
    for missing in (99999, 2**40):
        assert_problem(await world.sup_a.get(f"/api/supplier/products/{missing}"), 404, "not_found")
        assert_problem(await world.sup_a.patch(f"/api/supplier/products/{missing}", json={"price_fen": 1}), 404, "not_found")
        assert_problem(await world.sup_a.post(f"/api/supplier/products/{missing}/submit"), 404, "not_found")
        assert_problem(await world.admin.post(f"/api/admin/products/{missing}/approve"), 404, "not_found")
        assert_problem(await world.admin.get(f"/api/products/{missing}"), 404, "not_found")


# ---------------------------------------------------------------------------
# the review
# ---------------------------------------------------------------------------


async def test_review_happy_paths(world, anon):
    p = await new_product(world.sup_a)
    r = await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit")
    assert r.status_code == 200 and r.json()["status"] == "pending_review"
    queue = (await world.admin.get("/api/admin/reviews")).json()
    assert [i["id"] for i in queue["items"]] == [p["id"]] and queue["total"] == 1
    r = await world.admin.post(f"/api/admin/products/{p['id']}/reject", json={"reason": "缺少检测报告"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["review_note"] == "缺少检测报告"
    assert (await world.admin.get("/api/admin/reviews")).json()["total"] == 0
    # the supplier fixes it and resubmits
    r = await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"description": "附SC检测报告。"})
    assert r.json()["status"] == "rejected"
    assert (await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit")).json()["status"] == "pending_review"
    assert_problem(await anon.get(f"/api/products/{p['id']}"), 404, "not_found")
    r = await world.admin.post(f"/api/admin/products/{p['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "listed" and r.json()["review_note"] == ""
    assert (await anon.get(f"/api/products/{p['id']}")).json()["status"] == "listed"
    r = await world.admin.post(f"/api/admin/products/{p['id']}/delist", json={"reason": "抽检不合格"})
    assert r.status_code == 200 and r.json()["status"] == "delisted" and r.json()["review_note"] == "抽检不合格"
    assert_problem(await anon.get(f"/api/products/{p['id']}"), 404, "not_found")
    assert (await world.admin.get(f"/api/admin/products/{p['id']}")).json()["status"] == "delisted"


@pytest.mark.parametrize("state", STATES)
async def test_every_action_from_every_state(world, state):
    """Exactly the legal moves work; every other one is 409 invalid_state and changes nothing."""
    for name in ACTIONS:
        p = await product_in_state(world, state)
        before = await snapshot()
        r = await action(world, p["id"], name)
        if (state, name) in LEGAL:
            assert r.status_code == 200, (state, name, r.text)
            assert r.json()["status"] == LEGAL[(state, name)]
        else:
            body = assert_problem(r, 409, "invalid_state")
            assert body["product_status"] == state and state in body["detail"]
            assert await snapshot() == before, (state, name)


async def test_editing_a_listed_product(world, anon):
    p = await product_in_state(world, "listed")
    r = await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"price_fen": 5900, "stock": 7})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["price_fen"], r.json()["stock"]) == ("listed", 5900, 7)
    public = (await anon.get(f"/api/products/{p['id']}")).json()
    assert (public["price_fen"], public["stock"]) == (5900, 7)
    # the same title again is no change
    r = await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"title": PRODUCT["title"]})
    assert r.json()["status"] == "listed"
    for change in ({"title": "毕节绿茶（新包装）"}, {"description": "新描述"}, {"region": "maoming"}):
        r = await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json=change)
        assert r.status_code == 200 and r.json()["status"] == "pending_review", change
        assert_problem(await anon.get(f"/api/products/{p['id']}"), 404, "not_found")
        assert (await world.admin.get("/api/admin/reviews")).json()["items"][0]["id"] == p["id"]
        assert (await world.admin.post(f"/api/admin/products/{p['id']}/approve")).json()["status"] == "listed"
    public = (await anon.get(f"/api/products/{p['id']}")).json()
    assert (public["title"], public["description"], public["region"]) == ("毕节绿茶（新包装）", "新描述", "maoming")


async def test_a_delisted_product_cannot_be_edited(world):
    p = await product_in_state(world, "delisted")
    before = await snapshot()
    assert_problem(await world.sup_a.patch(f"/api/supplier/products/{p['id']}", json={"stock": 5}), 409, "invalid_state")
    assert await snapshot() == before


# ---------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------


async def test_only_listed_products_are_public(world, anon):
    products = {state: await product_in_state(world, state) for state in STATES}
    r = await anon.get("/api/products")
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [products["listed"]["id"]] and r.json()["total"] == 1
    assert PRODUCT_FIELDS <= set(r.json()["items"][0])
    for state, p in products.items():
        r = await anon.get(f"/api/products/{p['id']}")
        if state == "listed":
            assert r.status_code == 200 and r.json()["id"] == p["id"]
        else:
            assert_problem(r, 404, "not_found")
    mine = (await world.sup_a.get("/api/supplier/products")).json()
    assert mine["total"] == 5 and [i["id"] for i in mine["items"]] == sorted(p["id"] for p in products.values())
    for state, p in products.items():
        only = (await world.sup_a.get(f"/api/supplier/products?status={state}")).json()
        assert [i["id"] for i in only["items"]] == [p["id"]]
        assert (await world.admin.get(f"/api/admin/products?status={state}")).json()["items"][0]["id"] == p["id"]
    body = assert_problem(await world.sup_a.get("/api/supplier/products?status=gone"), 400, "validation_failed")
    assert body["errors"][0]["field"] == "status"


async def test_list_filters(world, anon):
    tea = await product_in_state(world, "listed")
    lychee = await product_in_state(
        world, "listed", title="高州白糖罂荔枝 5斤装", region="maoming", category="fruit",
        description="产自茂名高州根子镇荔枝贡园。",
    )  # fmt: skip
    honey = await product_in_state(
        world, "listed", title="Litchi Honey 蜂蜜 500g", region="maoming", category="snack",
        description="荔枝花期采集的荔枝蜜，100%_纯正。",
    )  # fmt: skip
    rice = await product_in_state(world, "listed", sup=world.sup_b, title="万绿湖丝苗米 5kg", region="heyuan", category="grain_oil", description="河源山坑米。")
    await product_in_state(world, "draft", title="荔枝干 草稿", region="maoming", category="dried")

    async def ids(query: str) -> list[int]:
        r = await anon.get(f"/api/products?{query}")
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return [i["id"] for i in r.json()["items"]]

    assert await ids("") == [tea["id"], lychee["id"], honey["id"], rice["id"]]
    assert await ids("region=maoming") == [lychee["id"], honey["id"]]
    assert await ids("region=nowhere") == []
    assert await ids("category=fruit") == [lychee["id"]]
    assert await ids(f"supplier_id={world.supplier_b_id}") == [rice["id"]]
    assert await ids("paired_with=GZ") == [tea["id"], lychee["id"], honey["id"]]
    assert await ids("paired_with=MM") == [lychee["id"], honey["id"]]
    assert await ids("paired_with=SZ") == [rice["id"]]
    assert await ids("paired_with=SZ&paired_with=MM") == [lychee["id"], honey["id"], rice["id"]]
    assert await ids("paired_with=HZ") == []
    # q: Chinese inside the title or the description, Latin in any case, % and _ literally
    assert await ids("q=荔枝") == [lychee["id"], honey["id"]]
    assert await ids("q=贡园") == [lychee["id"]]
    assert await ids("q=白糖罂") == [lychee["id"]]
    assert await ids("q=litchi%20HONEY") == [honey["id"]]
    assert await ids("q=100%25_") == [honey["id"]]
    assert await ids("q=%25") == [honey["id"]]
    assert await ids("q=_") == [honey["id"]]
    assert await ids("q=%E8%8D%94%E6%9E%9D&category=fruit&region=maoming&paired_with=GZ") == [lychee["id"]]
    assert await ids(f"q=荔枝&supplier_id={world.supplier_b_id}") == []
    # bad filters are refused, naming the parameter
    for query, field in (
        ("category=vegetables", "category"),
        ("region=Mao%20Ming", "region"),
        ("paired_with=gz", "paired_with"),
        ("supplier_id=abc", "supplier_id"),
        ("supplier_id=0", "supplier_id"),
        ("q=" + "荔" * 101, "q"),
    ):
        body = assert_problem(await anon.get(f"/api/products?{query}"), 400, "validation_failed")
        assert body["errors"][0]["field"] == field, (query, body)


async def test_text_filter_takes_its_escape_characters_literally(world, anon):
    """`q` is one LIKE pattern escaped with `!`: a `!` or a backslash in it is plain text."""
    bang = await product_in_state(world, "listed", title="特价!高山茶 TEA", description="明前")
    slash = await product_in_state(world, "listed", title="反斜杠\\米", description="新米")

    async def ids(q: str) -> list[int]:
        r = await anon.get("/api/products", params={"q": q})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids("!") == await ids("价!高") == await ids("!高山茶 t") == [bang["id"]]
    assert await ids("\\") == await ids("杠\\米") == [slash["id"]]
    assert await ids("!%") == await ids("!_") == await ids("!!") == []
    assert await ids("tea") == await ids("TeA") == [bang["id"]]


async def test_pagination_and_ordering(world, anon):
    made = [(await product_in_state(world, "listed", title=f"绿茶 {n}"))["id"] for n in range(7)]
    assert made == sorted(made)
    seen = []
    for offset in (0, 3, 6):
        r = (await anon.get(f"/api/products?limit=3&offset={offset}")).json()
        assert r["total"] == 7
        seen += [i["id"] for i in r["items"]]
    assert seen == made
    assert (await anon.get("/api/products?offset=7")).json() == {"items": [], "total": 7}
    assert len((await anon.get("/api/products?limit=200")).json()["items"]) == 7
    for query, field in (("limit=201", "limit"), ("limit=0", "limit"), ("limit=-1", "limit"), ("offset=-1", "offset"), ("limit=abc", "limit")):
        body = assert_problem(await anon.get(f"/api/products?{query}"), 400, "validation_failed")
        assert body["errors"][0]["field"] == field
    assert_problem(await world.sup_a.get("/api/supplier/products?limit=500"), 400, "validation_failed")
    assert_problem(await world.admin.get("/api/admin/reviews?limit=500"), 400, "validation_failed")
    assert_problem(await world.admin.get("/api/admin/suppliers?limit=500"), 400, "validation_failed")
    assert_problem(await anon.get("/api/regions?limit=500"), 400, "validation_failed")


# ---------------------------------------------------------------------------
# stock, as the orders code uses it
# ---------------------------------------------------------------------------


async def stock_of(*ids: int) -> list[int]:
    from catalog.tables import Product

    rows = {r["id"]: r["stock"] for r in await Product.select(Product.id, Product.stock).where(Product.id.is_in(list(ids)))}
    return [rows[i] for i in ids]


async def test_reserve_and_release_stock(world):
    from catalog.stock import ReservedLine, release_stock, reserve_stock

    a = await product_in_state(world, "listed", price_fen=2500, stock=10)
    b = await product_in_state(world, "listed", sup=world.sup_b, region="heyuan", title="丝苗米", price_fen=3999, stock=3)
    got = await reserve_stock([(b["id"], 3), (a["id"], 4)])
    assert got == [
        ReservedLine(product_id=b["id"], quantity=3, unit_price_fen=3999, amount_fen=11997, supplier_id=world.supplier_b_id, region_code="heyuan", title="丝苗米"),
        ReservedLine(product_id=a["id"], quantity=4, unit_price_fen=2500, amount_fen=10000, supplier_id=world.supplier_a_id, region_code="bijie", title=PRODUCT["title"]),
    ]
    assert await stock_of(a["id"], b["id"]) == [6, 0]
    await release_stock([(b["id"], 3), (a["id"], 4)])
    assert await stock_of(a["id"], b["id"]) == [10, 3]
    # stock comes back for a product delisted meanwhile
    await reserve_stock([(a["id"], 2)])
    await world.admin.post(f"/api/admin/products/{a['id']}/delist", json={"reason": "停售"})
    await release_stock([(a["id"], 2)])
    assert await stock_of(a["id"]) == [10]


async def test_reserve_stock_is_all_or_nothing(world):
    from catalog.stock import reserve_stock
    from common.errors import DomainError

    a = await product_in_state(world, "listed", title="甲", stock=5)
    b = await product_in_state(world, "listed", title="乙", stock=2)
    c = await product_in_state(world, "listed", title="丙", stock=9)
    d = await product_in_state(world, "listed", title="丁", stock=0)
    with pytest.raises(DomainError) as err:
        await reserve_stock([(c["id"], 1), (d["id"], 1), (a["id"], 5), (b["id"], 3)])
    assert err.value.code == "out_of_stock"
    assert err.value.extra["products"] == [
        {"product_id": b["id"], "requested": 3, "available": 2},
        {"product_id": d["id"], "requested": 1, "available": 0},
    ]
    assert await stock_of(a["id"], b["id"], c["id"], d["id"]) == [5, 2, 9, 0]

    draft = await product_in_state(world, "draft", title="戊")
    pending = await product_in_state(world, "pending_review", title="己")
    with pytest.raises(DomainError) as err:
        await reserve_stock([(a["id"], 1), (pending["id"], 1), (draft["id"], 1)])
    assert err.value.code == "not_listed"
    assert err.value.extra["products"] == [
        {"product_id": draft["id"], "status": "draft"},
        {"product_id": pending["id"], "status": "pending_review"},
    ]
    with pytest.raises(DomainError) as err:
        await reserve_stock([(a["id"], 1), (99999, 1), (2**40, 1)])
    assert err.value.code == "not_found" and err.value.extra["products"] == [99999, 2**40]
    for bad in ([(a["id"], 0)], [(a["id"], 1), (a["id"], 1)]):
        with pytest.raises(DomainError) as err:
            await reserve_stock(bad)
        assert err.value.code == "validation_failed"
    assert await stock_of(a["id"], b["id"], c["id"], d["id"]) == [5, 2, 9, 0]


async def test_reserve_stock_joins_the_callers_transaction(world):
    from catalog.stock import reserve_stock
    from catalog.tables import Product

    a = await product_in_state(world, "listed", stock=5)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with Product._meta.db.transaction():
            await reserve_stock([(a["id"], 4)])
            assert await stock_of(a["id"]) == [1]
            raise Abort
    assert await stock_of(a["id"]) == [5]


# ---------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------


async def seed_catalog() -> dict[str, int]:
    from catalog.regions import ensure_region
    from catalog.service import ensure_product
    from catalog.suppliers import ensure_supplier

    for r in json.loads((SEEDS / "regions.json").read_text(encoding="utf-8")):
        await ensure_region(r["code"], r["name"], r["province"], r["paired_with"])
    suppliers = {}
    for s in json.loads((SEEDS / "suppliers.json").read_text(encoding="utf-8")):
        suppliers[s["name"]] = await ensure_supplier(s["name"], s["regions"])
    ids = {}
    for p in json.loads((SEEDS / "products.json").read_text(encoding="utf-8")):
        ids[p["title"]] = await ensure_product(
            suppliers[p["supplier"]], p["title"], p["region"], p["category"], p["unit"], p["price_fen"], p["stock"], p["description"], p["status"]
        )
    return ids


async def test_seeding_is_idempotent(app, anon):
    from catalog.regions import ensure_region
    from catalog.suppliers import ensure_supplier

    products = json.loads((SEEDS / "products.json").read_text(encoding="utf-8"))
    first = await seed_catalog()
    after_first = await snapshot()
    assert len(after_first[0]) == len(json.loads((SEEDS / "regions.json").read_text(encoding="utf-8")))
    assert len(after_first[4]) == len(products) == len(first)
    assert await seed_catalog() == first
    assert await snapshot() == after_first
    # the statuses in the data are kept, and only the listed ones are public
    listed = sum(p["status"] == "listed" for p in products)
    assert (await anon.get("/api/products?limit=200")).json()["total"] == listed
    mm_regions = {r["code"] for r in json.loads((SEEDS / "regions.json").read_text(encoding="utf-8")) if "MM" in r["paired_with"]}
    expected = [
        first[p["title"]]
        for p in products
        if p["status"] == "listed" and p["region"] in mm_regions and ("荔枝" in p["title"] or "荔枝" in p["description"])
    ]
    lychee = (await anon.get("/api/products?q=荔枝&paired_with=MM&limit=200")).json()
    assert expected and [i["id"] for i in lychee["items"]] == sorted(expected) and lychee["total"] == len(expected)
    # ensure_supplier with no regions just finds the supplier; ensure_region adds a missing pairing
    name = json.loads((SEEDS / "suppliers.json").read_text(encoding="utf-8"))[0]["name"]
    assert await ensure_supplier(name, []) == (await anon.get(f"/api/products/{first[products[0]['title']]}")).json()["supplier_id"]
    await ensure_region("bijie", "毕节", "贵州", ["GZ", "SZ"])
    assert (await anon.get("/api/regions/bijie")).json()["paired_with"] == ["GZ", "SZ"]


async def test_seeding_validates_like_the_api(app):
    from catalog.regions import ensure_region
    from catalog.service import ensure_product
    from catalog.suppliers import ensure_supplier
    from common.errors import DomainError

    await ensure_region("bijie", "毕节", "贵州", ["GZ"])
    supplier = await ensure_supplier("毕节农业合作社", ["bijie"])
    cases = [
        ((supplier, "茶" * 61, "bijie", "tea", "罐", 100, 1, "", "listed"), "validation_failed", "title"),
        ((supplier, "绿茶", "bijie", "vegetables", "罐", 100, 1, "", "listed"), "validation_failed", "category"),
        ((supplier, "绿茶", "bijie", "tea", "罐", 0, 1, "", "listed"), "validation_failed", "price_fen"),
        ((supplier, "绿茶", "bijie", "tea", "罐", 100, 1, "", "sold"), "validation_failed", "status"),
        ((supplier, "绿茶", "atlantis", "tea", "罐", 100, 1, "", "listed"), "validation_failed", "region"),
        ((supplier + 1000, "绿茶", "bijie", "tea", "罐", 100, 1, "", "listed"), "not_found", None),
    ]
    before = await snapshot()
    for args, code, field in cases:
        with pytest.raises(DomainError) as err:
            await ensure_product(*args)
        assert err.value.code == code, args
        if field:
            assert err.value.extra["errors"][0]["field"] == field
    with pytest.raises(DomainError) as err:
        await ensure_supplier("另一个", ["atlantis"])
    assert err.value.extra["errors"][0]["field"] == "regions"
    with pytest.raises(DomainError):
        await ensure_region("Bad Code", "x", "y", [])
    assert await snapshot() == before
