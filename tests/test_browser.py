"""The pages in a real browser: headless Chromium (Debian's package) driven by Playwright's
sync API against the real server process. The buyer logs in, fills a basket, sees each
member's remaining quota and the live split, places an order and sees how to pay it; the
auditor sees the targets as bars and verifies the ledger.

Screenshots go to tests/screenshots/ (or $SHOP_SCREENSHOTS)."""

from __future__ import annotations

import re

import httpx
import pytest

from budgets import ledger, targets
from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import browser_page, expect, log_in, shoot
from tests.world import add_members, add_union, build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def buyer_world(make_user, admin):
    world = await build_world(make_user, admin)
    # the first member already has 100 yuan held by an earlier order
    r = await world.buyer.post(
        "/api/orders",
        json={"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": [world.members[0]]},
        headers={"Idempotency-Key": "earlier"},
    )
    assert r.status_code == 201, r.text
    return world


def test_buyer_orders_for_members_and_sees_how_to_pay(server, buyer_world):
    with browser_page() as page:
        buyer_flow(page, server, buyer_world)


def buyer_flow(page, server, w):
    log_in(page, server, w.buyer.user["username"])
    expect(page).to_have_url(re.compile(r"/shop$"))
    expect(page.get_by_role("heading", name="采购下单")).to_be_visible()

    # each member's remaining quota for the year, next to their name
    first = page.locator("#member-list label", has_text="职工A0")
    expect(first.locator(".quota")).to_have_text("剩余 ¥500.00")
    expect(page.locator("#member-list label", has_text="职工A1").locator(".quota")).to_have_text("剩余 ¥600.00")

    # the basket (HTMX): add the tea, then raise it to 6 boxes = 600 yuan
    card = page.locator("article.product", has_text="毕节高山绿茶 250克")
    card.get_by_role("button", name="加入采购车", exact=False).click()
    basket = page.locator("#basket")
    expect(basket).to_contain_text("毕节高山绿茶 250克")
    expect(page.locator("#basket-total")).to_have_text("¥100.00")
    for total in ("¥200.00", "¥300.00", "¥400.00", "¥500.00", "¥600.00"):
        basket.get_by_role("button", name=re.compile("^增加")).click()
        expect(page.locator("#basket-total")).to_have_text(total)

    # the live split: 600 yuan on the first member alone is over her 500 left
    first.locator("input[type=checkbox]").check()
    preview = page.locator("#preview")
    expect(preview.locator("#over-warning")).to_contain_text("1 位会员的分摊金额超过本年度剩余额度")
    expect(preview.locator("tr.over")).to_contain_text("超出 ¥100.00")
    # split over every member (select all: 5 members, 120 yuan each) and the warning goes
    page.locator("input[data-select-all]").check()
    expect(preview).to_contain_text("平均分摊给 5 位会员")
    expect(preview.locator("#over-warning")).to_have_count(0)
    expect(preview.locator("tbody tr").first).to_contain_text("¥120.00")
    shoot(page, "buyer_shop_split")

    page.get_by_role("button", name="提交订单").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+\?ok=placed$"))
    order_id = int(re.search(r"/orders/(\d+)", page.url)[1])
    expect(page.locator(".notice.ok")).to_contain_text("订单已提交")
    expect(page.locator("h1 .badge")).to_have_text("待付款")
    payment = page.locator("#payment")
    for label in ("收款户名", "账号", "开户行", "转账附言"):
        expect(payment).to_contain_text(label)
    expect(payment.locator("#reference")).to_have_text(f"XFBF{order_id:08d}")
    expect(payment).to_contain_text("¥600.00")
    expect(page.locator("table", has_text="会员编号")).to_contain_text("职工A4")
    shoot(page, "buyer_order_placed")

    # the order is the API's order, held for every member
    api = httpx.get(f"{server}/api/orders/{order_id}", headers={"Authorization": f"Bearer {w.buyer.token}"})
    body = api.json()
    assert body["status"] == "pending_payment" and body["total_fen"] == 60000
    assert sorted(a["amount_fen"] for a in body["allocations"]) == [12000] * 5

    # the budget page shows the holds, the basket is empty again
    page.goto(f"{server}/budget")
    expect(page.locator(f"#budget-{w.members[0]}")).to_contain_text("¥380.00")
    page.goto(f"{server}/shop")
    expect(page.locator("#basket")).to_contain_text("采购车是空的")


@pytest.fixture
async def report_world(make_user, admin):
    """Two districts under the federation, each with a branch that has bought something."""
    world = await build_world(make_user, admin, members=5)
    year = ledger.current_year()
    yx = await add_union("GZ-YX", "district", world.federation)
    yx_branch = await add_union("GZ-YX-001", "branch", yx)
    yx_members = await add_members(yx_branch, "Y", 4)
    yx_buyer = await make_user("buyer", union_id=yx_branch)
    for union, target in [(world.federation, 200000), (world.district, 40000), (world.branch, 30000), (yx, 50000), (yx_branch, 50000)]:
        await targets.set_target(union, year, target)
    for buyer, members, quantity, key in [(world.buyer, world.members, 3, "r1"), (yx_buyer, yx_members, 4, "r2")]:
        r = await buyer.post(
            "/api/orders",
            json={"lines": [{"product_id": world.products["tea"], "quantity": quantity}], "members": members},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
        assert r.status_code == 200, r.text
    world.auditor = await make_user("auditor", union_id=world.federation)
    return world


def test_auditor_sees_progress_bars_and_verifies_the_ledger(server, report_world):
    with browser_page() as page:
        auditor_flow(page, server, report_world)


def auditor_flow(page, server, w):
    log_in(page, server, w.auditor.user["username"])
    expect(page).to_have_url(re.compile(r"/reports/targets$"))
    tree = page.locator("#targets-tree")
    # GZ-TH: 300 of 400 yuan = 75%; GZ-YX: 400 of 500 = 80%; the federation: 700 of 2000 = 35%
    expect(tree.locator("tr", has_text="GZ-TH工会").first).to_contain_text("75.0%")
    expect(tree.locator("tr", has_text="GZ-YX工会").first).to_contain_text("80.0%")
    expect(tree.locator("tr", has_text="GZ工会").first).to_contain_text("35.0%")
    bar = tree.locator("tr", has_text="GZ-YX工会").first.locator(".bar .progress")
    expect(bar).to_have_class(re.compile(r"\bgood\b"))
    assert bar.evaluate("el => el.style.width") == "80%"
    chart = page.locator("#chart")
    expect(chart).to_be_visible()
    expect(chart.locator("li")).to_have_count(2)  # the federation's two districts
    expect(chart).to_contain_text("75.0%")
    shoot(page, "auditor_targets_tree")

    page.get_by_role("link", name="额度流水").click()
    expect(page.get_by_role("heading", name="额度流水")).to_be_visible()
    page.locator("#verify-button").click()
    expect(page.locator("#verify-result")).to_contain_text("校验通过")
    expect(page.locator("#verify-result")).to_contain_text("共 18 条流水")  # 9 members, a hold and a capture each
