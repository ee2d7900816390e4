"""The supplier's, the admin's and the auditor's work in a real browser (Debian's Chromium,
Playwright), at a desk and on a phone: a price typed as people type it and a big change
confirmed, shipping with a tracking number, deciding an after-sales request; confirming
transfers (the count goes down on the page, the expected reference never shown), reviewing,
delisting, refunding some lines, accounts, the cap's history and the trail; the targets chart
readable on a phone, the ledger by member number or name. Each role's main page is saved at
both sizes under tests/screenshots/."""

from __future__ import annotations

import re

import pytest

from budgets import ledger, targets
from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import DESK, PHONE, browser, expect, fits_the_phone, log_in, shoot, tab
from tests.world import build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def busy_world(make_user, admin):
    """A paid order awaiting shipment with an after-sales request on it, two transfers to
    confirm, a listing to review, a target set."""
    w = await build_world(make_user, admin)
    year = ledger.current_year()
    await targets.set_target(w.district, year, 100000)
    await targets.set_target(w.branch, year, 50000)

    async def place(quantity: int, members: list[int], key: str) -> dict:
        r = await w.buyer.post(
            "/api/orders",
            json={"lines": [{"product_id": w.products["tea"], "quantity": quantity}], "members": members},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 201, r.text
        return r.json()

    paid = await place(3, w.members[:3], "paid")
    r = await admin.post(f"/api/admin/orders/{paid['id']}/confirm-transfer", json={"reference": paid["payment"]["reference"]})
    w.paid = r.json()
    r = await w.buyer.post(
        f"/api/orders/{paid['id']}/after-sales", json={"lines": [{"line_id": paid["lines"][0]["id"], "quantity": 1}], "reason": "破损 1 盒"}
    )
    assert r.status_code == 201, r.text
    w.pending = [await place(1, [w.members[3]], "t-1"), await place(1, [w.members[4]], "t-2")]
    assert (await w.supplier_user.post(f"/api/supplier/products/{w.products['draft']}/submit")).status_code == 200
    return w


def test_the_supplier_prices_ships_and_decides_an_after_sale(server, busy_world):
    w = busy_world
    with browser() as chromium:
        with tab(chromium, DESK) as page:
            log_in(page, server, w.supplier_user.user["username"])
            expect(page.locator("#unread-count")).to_have_text("2")  # to ship; an after-sales request
            shoot(page, "supplier_products_desktop")
            page.get_by_role("link", name="＋ 新建商品").click()
            page.fill("#title", "毕节红茶 礼盒")
            page.select_option("#region", "bijie")
            page.select_option("#category", "tea")
            page.fill("#unit", "盒")
            page.fill("#price", "¥45,00")
            page.fill("#stock", "20")
            page.get_by_role("button", name="保存").click()
            expect(page.locator(".field.has-problem")).to_contain_text("逗号只能用来分隔千位")
            page.fill("#price", "45.5元")
            page.get_by_role("button", name="保存").click()
            expect(page).to_have_url(re.compile(r"/supplier/products\?ok=created$"))
            expect(page.get_by_role("row", name=re.compile("毕节红茶 礼盒"))).to_contain_text("¥45.50")
            # a listed product's price halved: asked first
            page.goto(f"{server}/supplier/products/{w.products['tea']}/edit")
            page.fill("#price", "40")
            page.get_by_role("button", name="保存").click()
            expect(page.locator("#price-confirm")).to_contain_text("¥100.00 → ¥40.00（-60%）")
            page.get_by_role("button", name="确认修改").click()
            expect(page.get_by_role("row", name=re.compile("毕节高山绿茶"))).to_contain_text("¥40.00")
            # ship the paid order's parcel
            page.get_by_role("link", name="发货", exact=True).click()
            shipment = page.locator(f"#shipment-{w.paid['shipments'][0]['id']}")
            expect(shipment).to_contain_text("GZ-TH-001工会")
            shipment.get_by_label("快递公司").fill("顺丰速运")
            shipment.get_by_label("运单号").fill("SF9988776655")
            shipment.get_by_role("button", name="确认发货").click()
            expect(page.locator(f"#shipment-{w.paid['shipments'][0]['id']}")).to_contain_text("SF9988776655")
            expect(page.locator(f"#shipment-{w.paid['shipments'][0]['id']} .badge")).to_have_text("已发货")
            # the after-sales request: accepted, refunded
            page.get_by_role("link", name="售后", exact=True).click()
            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="同意并退款").click()
            expect(page.locator("article .badge").first).to_have_text("已退款")
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.supplier_user.user["username"])
            fits_the_phone(page)
            shoot(page, "supplier_products_phone")
            for path in ["/supplier/shipments", "/after-sales", "/supplier/products/new"]:
                page.goto(server + path)
                fits_the_phone(page)


def test_the_admin_confirms_reviews_delists_refunds_and_keeps_the_books(server, busy_world):
    w = busy_world
    first, second = w.pending
    with browser() as chromium:
        with tab(chromium, DESK) as page:
            log_in(page, server, "admin", "admin-password")
            expect(page.locator("#review-" + str(w.products["draft"]))).to_contain_text("赫章核桃")
            shoot(page, "admin_reviews_desktop")
            page.locator(f"#review-{w.products['draft']}").get_by_role("button", name="通过并上架").click()
            expect(page.locator(f"#review-{w.products['draft']} .badge")).to_have_text("已上架")
            # transfers: a wrong reference is refused without showing the right one; the count goes down
            page.get_by_role("link", name="收款与退款").click()
            expect(page.locator("#pending-count")).to_have_text("2")
            row = page.locator(f"#transfer-{first['id']}")
            row.get_by_label(re.compile("银行流水上的附言")).fill("XFBF12345678")
            row.get_by_role("button", name="确认收款").click()
            expect(row).to_contain_text("转账附言：与订单不一致")
            assert first["payment"]["reference"] not in row.inner_text()
            expect(page.locator("#pending-count")).to_have_text("2")
            row.get_by_label(re.compile("银行流水上的附言")).fill(first["payment"]["reference"].lower())
            row.get_by_role("button", name="确认收款").click()
            expect(row).to_contain_text("已确认收款")
            expect(page.locator("#pending-count")).to_have_text("1")
            shoot(page, "admin_orders_desktop")
            # refund one box of the paid order from its page
            page.goto(f"{server}/orders/{w.paid['id']}")
            page.locator("#refund").get_by_label(re.compile("退几件")).fill("1")
            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="按数量退款").click()
            expect(page.locator("h1 .badge")).to_have_text("部分退款")
            expect(page.locator("#refunds")).to_contain_text("¥100.00")
            # delist a product, with the reason the supplier reads
            page.get_by_role("link", name="商品管理").click()
            row = page.get_by_role("row", name=re.compile("威宁苦荞米"))
            row.get_by_label(re.compile("下架原因")).fill("包装标识不全")
            page.once("dialog", lambda dialog: dialog.accept())
            row.get_by_role("button", name="下架").click()
            expect(page.locator(".notice.ok")).to_contain_text("商品已下架")
            # the cap: lowered, and its history
            page.get_by_role("link", name="额度与审批").click()
            page.fill("#cap", "550")
            page.get_by_role("button", name="保存").click()
            expect(page.locator("#cap-history")).to_contain_text("¥600.00")
            expect(page.locator("#cap-history")).to_contain_text("¥550.00")
            # accounts: a password reset
            page.get_by_role("link", name="账号").click()
            page.get_by_label(f"{w.buyer.user['username']} 的新密码").fill("reset-password-9")
            page.get_by_role("row", name=re.compile(w.buyer.user["username"])).get_by_role("button", name="重置").click()
            expect(page.locator(".notice.ok")).to_contain_text("密码已重置")
            # the trail says all of it in words
            page.get_by_role("link", name="操作记录").click()
            trail = page.locator("#trail")
            for said in ("确认转账到账", "退款", "商品审核通过", "商品下架", "调整额度", "重置密码"):
                expect(trail).to_contain_text(said)
        with tab(chromium, PHONE) as page:
            log_in(page, server, "admin", "admin-password")
            fits_the_phone(page)
            shoot(page, "admin_reviews_phone")
            for path in ["/admin/orders", f"/orders/{w.paid['id']}", "/admin/products", "/admin/policy", "/admin/users", "/audit/trail", "/admin/targets"]:
                page.goto(server + path)
                fits_the_phone(page)
            page.goto(server + "/admin/orders")
            shoot(page, "admin_orders_phone")


def test_the_auditor_reads_the_chart_on_a_phone_and_finds_members_in_the_ledger(server, busy_world):
    w = busy_world
    with browser() as chromium:
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.auditor.user["username"])
            chart = page.locator("#chart")
            expect(chart).to_contain_text("GZ-TH-001工会")
            sizes = chart.evaluate("el => [...el.querySelectorAll('.chart-name, .chart-label')].map(e => parseFloat(getComputedStyle(e).fontSize))")
            assert sizes and min(sizes) >= 12, sizes
            fits_the_phone(page)
            shoot(page, "auditor_targets_phone")
            for path in ["/audit/members?min_ratio=0", "/audit/ledger", "/audit/trail", "/orders", f"/orders/{w.paid['id']}"]:
                page.goto(server + path)
                fits_the_phone(page)
        with tab(chromium, DESK) as page:
            log_in(page, server, w.auditor.user["username"])
            shoot(page, "auditor_targets_desktop")
            page.get_by_role("link", name="额度流水").click()
            page.fill("#member", "a0001")
            page.get_by_role("button", name="筛选").click()
            rows = page.locator("tbody tr")
            expect(rows).to_have_count(2)  # a hold and its capture
            expect(rows.first).to_contain_text("职工A1")
            page.fill("#member", "职工A")
            page.get_by_role("button", name="筛选").click()
            expect(page.locator("#member-matches")).to_contain_text("对应 5 位会员")
            page.get_by_role("link", name=re.compile("职工A2（A0002")).click()
            expect(page.locator("#member")).to_have_value("A0002")
            expect(page.locator("tbody tr").first).to_contain_text("职工A2")
            page.locator("#verify-button").click()
            expect(page.locator("#verify-result")).to_contain_text("校验通过")
