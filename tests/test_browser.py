"""The pages in a real browser: headless Chromium (Debian's package) driven by Playwright's
sync API against the real server process. The buyer logs in, fills a basket, sees each
member's remaining quota and the live split, places an order and sees how to pay it; the
auditor sees the targets as bars and verifies the ledger.

Screenshots go to $SHOP_SCREENSHOTS when it is set (else the test's tmp_path)."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure
        raise RuntimeError(f"{CHROMIUM} is missing in CI")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from budgets import ledger, targets  # noqa: E402
from tests.server import running_server  # noqa: E402
from tests.world import add_members, add_union, build_world  # noqa: E402

pytestmark = pytest.mark.slow_suite

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "password-123"
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(app):
    with running_server(workers=1) as url:
        yield url


@contextmanager
def browser_page():
    """A fresh Chromium tab. Playwright's sync API runs its own event loop while it is
    open, so it is opened inside the test, after the (async) data fixtures have run, and
    closed before they are torn down."""
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = chromium.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(15_000)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield tab
        finally:
            context.close()
            chromium.close()
        assert not errors, errors  # no JavaScript errors on any page


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SHOP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


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


def test_buyer_orders_for_members_and_sees_how_to_pay(server, shots, buyer_world):
    with browser_page() as page:
        buyer_flow(page, server, shots, buyer_world)


def buyer_flow(page, server, shots, w):
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
    page.screenshot(path=str(shots / "buyer_shop.png"), full_page=True)

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
    page.screenshot(path=str(shots / "buyer_order.png"), full_page=True)

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


def test_auditor_sees_progress_bars_and_verifies_the_ledger(server, shots, report_world):
    with browser_page() as page:
        auditor_flow(page, server, shots, report_world)


def auditor_flow(page, server, shots, w):
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
    page.screenshot(path=str(shots / "auditor_targets.png"), full_page=True)

    page.get_by_role("link", name="额度流水").click()
    expect(page.get_by_role("heading", name="额度流水")).to_be_visible()
    page.locator("#verify-button").click()
    expect(page.locator("#verify-result")).to_contain_text("校验通过")
    expect(page.locator("#verify-result")).to_contain_text("共 18 条流水")  # 9 members, a hold and a capture each
