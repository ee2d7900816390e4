"""The buyer's work in a real browser (Debian's Chromium, Playwright), at a desk and on a
phone: the split preview always equals the basket, however fast + and − are pressed; ticked
members survive paging and searching; per-member amounts; the delivery address; a toast and
a badge on a phone where the basket is far down; nothing wider than a phone's screen; HTMX
failures and a lost session said on the page; a skip link and focus kept on + and −;
receipt and after-sales on the order page."""

from __future__ import annotations

import re

import pytest

from catalog import service as catalog
from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import DESK, PHONE, browser, expect, fits_the_phone, log_in, shoot, tab
from tests.world import build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def shop_world(make_user, admin):
    """The small world, with enough products from the branch's paired region for three pages
    of the catalogue (12 a page), and the first member with 100 yuan left."""
    world = await build_world(make_user, admin, members=6)
    for i in range(24):
        await catalog.ensure_product(world.supplier, f"毕节特产 {i:02d} 号", "bijie", "dried", "袋", 1000 + i, 100, "产地直发。", "listed")
    r = await world.buyer.post(
        "/api/orders",
        json={"lines": [{"product_id": world.products["tea"], "quantity": 5}], "members": [world.members[0]]},
        headers={"Idempotency-Key": "earlier"},
    )
    assert r.status_code == 201, r.text
    return world


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def test_the_preview_always_equals_the_basket_and_ticks_survive_paging(server, shop_world):
    w = shop_world
    tea, rice = w.products["tea"], w.products["rice"]  # ¥100.00 and ¥25.01
    with browser() as chromium, tab(chromium, DESK) as page:
        log_in(page, server, w.buyer.user["username"])
        page.locator("article.product", has_text="毕节高山绿茶 250克").get_by_role("button", name=re.compile("加入采购车")).click()
        expect(page.locator("#basket-total")).to_have_text("¥100.00")
        expect(page.locator("#toast")).to_contain_text("已加入采购车：毕节高山绿茶 250克")
        page.locator("article.product", has_text="威宁苦荞米 5斤").get_by_role("button", name=re.compile("加入采购车")).click()
        expect(page.locator("#basket-total")).to_have_text("¥125.01")
        # tick the first member (100 yuan left) and one more: 62.51 each, no warning
        for member in w.members[:2]:
            page.locator(f"input[name=member][value='{member}']").check()
        preview = page.locator("#preview")
        expect(preview.locator("#preview-total")).to_have_text("¥125.01")
        expect(preview.locator("#over-warning")).to_have_count(0)
        # + and − as fast as they come, never waiting between clicks: the queue keeps them in order
        quantities = {tea: 1, rice: 1}
        for product, op in [(tea, "inc"), (tea, "inc"), (rice, "inc"), (tea, "dec"), (rice, "inc"), (rice, "dec"), (tea, "inc"), (rice, "inc")]:
            page.locator(f"#{op}-{product}").click(no_wait_after=True)
            quantities[product] += 1 if op == "inc" else -1
        total = quantities[tea] * 10000 + quantities[rice] * 2501  # 3 teas, 3 rice: ¥375.03
        expect(page.locator("#basket-total")).to_have_text(yuan(total))
        expect(preview.locator("#preview-total")).to_have_text(yuan(total))
        first_share = total - total // 2  # the first member gets the odd fen
        expect(preview.locator("tbody tr").first).to_contain_text(yuan(first_share))
        expect(preview.locator("#over-warning")).to_contain_text("1 位会员的分摊金额超过本年度剩余额度")
        # focus stays on the control that was pressed
        page.locator(f"#dec-{tea}").focus()
        page.keyboard.press("Enter")
        total -= 10000
        expect(page.locator("#basket-total")).to_have_text(yuan(total))
        expect(preview.locator("#preview-total")).to_have_text(yuan(total))
        assert page.evaluate("document.activeElement.id") == f"dec-{tea}"
        expect(preview.locator("#over-warning")).to_contain_text("1 位会员")  # ¥137.52 each: still over the first's ¥100
        shoot(page, "buyer_shop_desktop")

        # paging and searching the catalogue keep the ticks (and the basket)
        page.get_by_role("link", name="下一页").click()
        expect(page).to_have_url(re.compile(r"page=2"))
        for member in w.members[:2]:
            expect(page.locator(f"input[name=member][value='{member}']")).to_be_checked()
        expect(page.locator(f"input[name=member][value='{w.members[2]}']")).not_to_be_checked()
        page.fill("#q", "苦荞")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("article.product")).to_have_count(1)
        for member in w.members[:2]:
            expect(page.locator(f"input[name=member][value='{member}']")).to_be_checked()
        expect(page.locator("#preview-total")).to_have_text(yuan(total))

        # amounts of one's own choosing: the first member takes ¥20.00, the second the rest
        page.get_by_label("指定每人金额").check()
        page.locator(f"#amount-{w.members[0]}").fill("20")
        page.locator(f"#amount-{w.members[1]}").fill(f"{(total - 2000) // 100}.{(total - 2000) % 100:02d}")
        page.locator(f"#amount-{w.members[1]}").press("Tab")
        expect(preview).to_contain_text("正好分完")
        page.get_by_role("button", name="提交订单").click()
        expect(page).to_have_url(re.compile(r"/orders/\d+\?ok=placed$"))
        expect(page.locator("#distribution")).to_contain_text("¥20.00")


def test_on_a_phone_the_basket_says_so_and_nothing_is_wider_than_the_screen(server, shop_world):
    w = shop_world
    with browser() as chromium, tab(chromium, PHONE) as page:
        log_in(page, server, w.buyer.user["username"])
        fits_the_phone(page)
        page.locator("article.product").first.get_by_role("button", name=re.compile("加入采购车")).click()
        toast = page.locator("#toast")
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("已加入采购车")
        assert toast.bounding_box()["y"] < PHONE["height"]  # in view, wherever the basket is
        badge = page.locator(".basket-badge")
        expect(badge).to_be_visible()
        expect(badge).to_contain_text("1")
        page.locator("article.product").nth(1).get_by_role("button", name=re.compile("加入采购车")).click()
        expect(badge).to_contain_text("2")
        shoot(page, "buyer_shop_phone")
        badge.click()
        expect(page.locator("#order-form")).to_be_in_viewport()
        for path in ["/budget", "/orders", "/members", "/addresses", "/after-sales", "/notifications", "/products"]:
            page.goto(server + path)
            fits_the_phone(page)
        page.goto(server + "/budget")
        wrap = page.locator(".table-wrap").first
        expect(wrap.get_by_role("columnheader", name="剩余")).to_be_attached()  # there, scrolled to inside its box
        wrap.evaluate("el => el.scrollLeft = el.scrollWidth")
        expect(wrap.get_by_role("columnheader", name="剩余")).to_be_in_viewport()
        shoot(page, "buyer_budget_phone")


def test_failures_and_a_lost_session_are_said_and_the_keyboard_is_enough(server, shop_world):
    w = shop_world
    with browser() as chromium, tab(chromium, DESK) as page:
        page.goto(server + "/no-such-page")
        expect(page.get_by_role("heading", name="找不到该页面或记录")).to_be_visible()
        log_in(page, server, w.buyer.user["username"])
        # the skip link comes first, and leads to the content
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="跳到正文")
        expect(skip).to_be_focused()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # adding with the keyboard only
        add = page.locator("article.product").first.get_by_role("button", name=re.compile("加入采购车"))
        add.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#basket-count")).to_have_text("1")
        box = page.locator(f"input[name=member][value='{w.members[1]}']")
        box.focus()
        page.keyboard.press("Space")
        expect(page.locator("#preview-total")).to_be_visible()
        # the network goes away during a click: said, not silent
        page.route("**/shop/basket", lambda route: route.abort("internetdisconnected"))
        page.locator("[id^=inc-]").first.click()
        expect(page.locator("#flash")).to_contain_text("网络连接中断")
        page.unroute("**/shop/basket")
        page.route("**/shop/basket", lambda route: route.fulfill(status=500, body="oops"))
        page.locator("[id^=inc-]").first.click()
        expect(page.locator("#flash")).to_contain_text("系统暂时无法完成请求")
        page.unroute("**/shop/basket")
        # the session ends (another device changed the password …): the login page says why, then back
        page.goto(server + "/shop?page=2")
        page.context.add_cookies([{"name": "shop_token", "value": "no.longer.valid", "url": server}])
        page.locator("[id^=inc-]").first.click()
        expect(page).to_have_url(re.compile(r"/login\?next=.*expired=1"))
        expect(page.locator("#expired")).to_contain_text("登录已过期")
        page.fill("#username", w.buyer.user["username"])
        page.fill("#password", "password-123")
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/shop\?page=2$"))


@pytest.fixture
async def paid_world(make_user, admin):
    world = await build_world(make_user, admin)
    r = await world.buyer.post(
        "/api/orders",
        json={"lines": [{"product_id": world.products["tea"], "quantity": 3}], "members": world.members[:3]},
        headers={"Idempotency-Key": "p-1"},
    )
    order = r.json()
    r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    order = r.json()
    r = await world.supplier_user.post(f"/api/supplier/shipments/{order['shipments'][0]['id']}/ship", json={"carrier": "顺丰速运", "tracking_no": "SF100200300"})
    assert r.status_code == 200, r.text
    world.order = order
    return world


def test_the_buyer_receives_asks_for_some_back_and_reads_the_bell(server, paid_world):
    w, order = paid_world, paid_world.order
    with browser() as chromium, tab(chromium, DESK) as page:
        log_in(page, server, w.buyer.user["username"])
        expect(page.locator("#unread-count")).to_have_text("1")  # shipped
        page.locator("#bell").click()
        page.get_by_role("button", name=re.compile("已发货")).click()
        expect(page).to_have_url(re.compile(rf"/orders/{order['id']}$"))
        expect(page.locator("#unread-count")).to_have_count(0)
        shipments = page.locator("#shipments")
        expect(shipments).to_contain_text("顺丰速运 SF100200300")
        page.once("dialog", lambda dialog: dialog.accept())
        shipments.get_by_role("button", name="确认收货").click()
        expect(page.locator("#shipments .badge")).to_have_text("已收货")
        page.get_by_text("申请售后（退货退款）").click()
        page.get_by_label(re.compile("退几件")).fill("1")
        page.fill("#reason", "到货破损 1 盒")
        page.get_by_role("button", name="提交售后申请").click()
        expect(page.locator("#after-sales")).to_contain_text("处理中")
        expect(page.locator("#history")).to_contain_text("申请售后")
        shoot(page, "buyer_order_desktop")
    with browser() as chromium, tab(chromium, PHONE) as page:
        log_in(page, server, w.buyer.user["username"])
        page.goto(f"{server}/orders/{order['id']}")
        fits_the_phone(page)
        shoot(page, "buyer_order_phone")
