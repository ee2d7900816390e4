"""A member's own quota page in a real browser (Debian's Chromium, Playwright) on a phone
(390×844): the figures and each allocation, nothing wider than the screen; a renewed link
(from the buyer's members page, confirmed) ends the old one; the buyer's 签收表 at a desk."""

from __future__ import annotations

import pytest

from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import DESK, PHONE, browser, expect, fits_the_phone, log_in, shoot, tab
from tests.world import build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def member_world(make_user, admin):
    """The small world; the first member shares a paid order of three products with two others
    (one tea refunded), and holds a share of an unpaid one."""
    w = await build_world(make_user, admin, members=4)
    lines = [{"product_id": w.products["tea"], "quantity": 2}, {"product_id": w.products["rice"], "quantity": 3}]
    r = await w.buyer.post("/api/orders", json={"lines": lines, "members": w.members[:3]}, headers={"Idempotency-Key": "paid"})
    assert r.status_code == 201, r.text
    order = r.json()
    r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    r = await admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]})
    assert r.status_code == 200, r.text
    r = await w.buyer.post(
        "/api/orders", json={"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": [w.members[0]]}, headers={"Idempotency-Key": "held"}
    )
    assert r.status_code == 201, r.text
    r = await w.buyer.get("/api/members/links")
    w.links = {item["member_id"]: item["url"].split("/m/", 1)[1] for item in r.json()["items"]}
    w.order = order
    w.view = (await w.buyer.get(f"/api/member-view/{w.links[w.members[0]]}")).json()
    return w


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def test_the_members_page_on_a_phone(server, member_world):
    w = member_world
    first = w.members[0]
    view = w.view
    with browser() as chromium:
        with tab(chromium, PHONE) as page:
            page.goto(f"{server}/m/{w.links[first]}")
            expect(page.locator("h1")).to_contain_text("年消费帮扶额度")
            expect(page.locator("#cap")).to_have_text(yuan(view["cap_fen"]))
            expect(page.locator("#spent")).to_have_text(yuan(view["spent_fen"]))
            expect(page.locator("#held")).to_have_text(yuan(view["held_fen"]))
            expect(page.locator("#remaining")).to_have_text(yuan(view["remaining_fen"]))
            items = page.locator("#items li")
            expect(items).to_have_count(2)
            expect(items.first).to_contain_text("毕节高山绿茶 250克、威宁苦荞米 5斤")
            expect(items.first).to_contain_text("已退 ¥33.34")
            expect(items.nth(1)).to_contain_text("占用中")
            expect(page.locator("nav")).to_have_count(0)
            fits_the_phone(page)
            shoot(page, "member_view_phone")
        # the buyer renews the link on the members page (a phone too): the old one ends
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.buyer.user["username"])
            page.goto(f"{server}/members")
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator(f"#member-{first}").get_by_role("button", name="更换查询链接").click()
            expect(page.locator(".notice.ok")).to_contain_text("原链接和已打印的二维码已失效")
            fits_the_phone(page)
        with tab(chromium, PHONE) as page:
            response = page.goto(f"{server}/m/{w.links[first]}")
            assert response.status == 404
            expect(page.locator("main")).to_contain_text("这个链接无效或已更换")
            fits_the_phone(page)
            shoot(page, "member_view_gone_phone")


def test_the_receipt_sheet_at_a_desk(server, member_world):
    w = member_world
    with browser() as chromium, tab(chromium, DESK) as page:
        log_in(page, server, w.buyer.user["username"])
        page.goto(f"{server}/orders/{w.order['id']}/receipt-sheet")
        rows = page.locator("#receipt tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.locator("svg")).to_have_count(3)
        expect(rows.first).to_contain_text("职工A0")
        shoot(page, "buyer_receipt_sheet_desktop")
