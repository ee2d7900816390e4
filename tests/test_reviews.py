"""The review's record: every submit, approve, reject and delist writes one `ProductReview` row
with who did it, in the transaction that moves the product; a refused move writes none.
`catalog.service.list_reviews` reads it for the shop's admin trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from catalog import service
from catalog.tables import ProductReview
from common.errors import DomainError
from tests.conftest import assert_problem
from tests.test_catalog import ACTIONS, LEGAL, STATES, action, new_product, product_in_state, world  # noqa: F401  (fixture)
from tests.test_web import page_login, post_form


async def user_id(api) -> int:
    return (await api.get("/api/me")).json()["id"]


async def recorded(product_id: int | None = None) -> list[tuple]:
    """(action, actor_id, reason) of the product's rows (or every row), oldest first."""
    query = ProductReview.select(ProductReview.action, ProductReview.actor_id, ProductReview.reason).order_by(ProductReview.id)
    if product_id is not None:
        query = query.where(ProductReview.product == product_id)
    return [(r["action"], r["actor_id"], r["reason"]) for r in await query]


async def test_each_move_of_the_review_records_who_made_it(world, make_user):
    admin_id, supplier_id = await user_id(world.admin), await user_id(world.sup_a)
    other_admin = await make_user("admin")
    p = await new_product(world.sup_a)
    url = f"/api/admin/products/{p['id']}"
    assert (await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit")).status_code == 200
    assert (await world.admin.post(f"{url}/reject", json={"reason": "缺少检测报告"})).status_code == 200
    assert (await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit")).status_code == 200
    assert (await other_admin.post(f"{url}/approve")).status_code == 200
    assert (await world.admin.post(f"{url}/delist", json={"reason": "抽检不合格"})).status_code == 200
    assert await recorded(p["id"]) == [
        ("submitted", supplier_id, ""),
        ("rejected", admin_id, "缺少检测报告"),
        ("submitted", supplier_id, ""),
        ("approved", other_admin.user["id"], ""),
        ("delisted", admin_id, "抽检不合格"),
    ]


async def test_the_admin_pages_record_the_signed_in_admin(client, world):
    admin_id = await user_id(world.admin)
    p = await product_in_state(world, "pending_review")
    assert (await page_login(client, "admin", "admin-password")).status_code == 303
    r = await post_form(client, f"/admin/reviews/{p['id']}/reject", {"reason": "图片不清晰"}, htmx=True)
    assert "已驳回" in r.text
    await world.sup_a.post(f"/api/supplier/products/{p['id']}/submit")
    assert "已上架" in (await post_form(client, f"/admin/reviews/{p['id']}/approve", htmx=True)).text
    assert [row for row in await recorded(p["id"]) if row[0] != "submitted"] == [
        ("rejected", admin_id, "图片不清晰"),
        ("approved", admin_id, ""),
    ]


@pytest.mark.parametrize("state", STATES)
async def test_a_refused_move_records_nothing(world, state):
    p = await product_in_state(world, state)
    before = await recorded()
    for name in ACTIONS:
        if (state, name) not in LEGAL:
            assert_problem(await action(world, p["id"], name), 409, "invalid_state")
    url = f"/api/admin/products/{p['id']}"
    assert_problem(await world.admin.post(f"{url}/reject", json={"reason": "  "}), 400, "validation_failed")
    assert_problem(await world.admin.post("/api/admin/products/99999/approve"), 404, "not_found")
    assert_problem(await world.sup_b.post(f"/api/supplier/products/{p['id']}/submit"), 403, "forbidden")
    assert await recorded() == before


async def test_list_reviews_newest_first_with_the_products_title(world):
    admin_id = await user_id(world.admin)
    start = datetime.now(timezone.utc)
    first = await product_in_state(world, "listed", title="毕节红茶")
    second = await product_in_state(world, "rejected", title="毕节白茶")
    items, total = await service.list_reviews()
    assert total == 4
    assert [(i.action, i.product_id, i.product_title, i.actor_id, i.reason) for i in items] == [
        ("rejected", second["id"], "毕节白茶", admin_id, "图片不清晰"),
        ("submitted", second["id"], "毕节白茶", world.sup_a.user["id"], ""),
        ("approved", first["id"], "毕节红茶", admin_id, ""),
        ("submitted", first["id"], "毕节红茶", world.sup_a.user["id"], ""),
    ]
    assert all(i.at.utcoffset() == timedelta(hours=8) and i.at >= start for i in items)  # shown in Shanghai time
    page, total = await service.list_reviews(limit=2, offset=1)
    assert [i.action for i in page] == ["submitted", "approved"] and total == 4
    since = items[1].at
    recent, total = await service.list_reviews(since=since)
    assert [i.action for i in recent] == ["rejected", "submitted"] and total == 2
    assert await service.list_reviews(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == ([], 0)
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"since": datetime(2026, 1, 1)}):
        with pytest.raises(DomainError) as refused:
            await service.list_reviews(**bad)
        assert refused.value.code == "validation_failed", bad
