"""Invoices and 对账 in a real browser (Debian's Chromium, Playwright), at a desk and on a
phone: the supplier uploads a shipment's invoice (a wrong amount said on the page first), the
buyer rejects it with a reason, the supplier reads the reason and uploads again, the buyer
accepts; the settlement page (admin, supplier) and the statement page (buyer, auditor) with
their Excel downloads read back as workbooks; nothing wider than a phone's screen. The new
pages are saved at both sizes under tests/screenshots/."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from openpyxl import load_workbook

from common.clock import SHANGHAI
from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import DESK, PHONE, browser, expect, fits_the_phone, log_in, shoot, tab
from tests.test_invoices import pdf
from tests.world import build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def paid_world(make_user, admin):
    """A paid order of the branch holding tea (the supplier's shipment, ¥300.00) and lychee
    (the other supplier's), and an earlier paid order whose tea invoice was accepted."""
    w = await build_world(make_user, admin)

    async def paid(lines: list[tuple[str, int]], key: str) -> dict:
        body = {"lines": [{"product_id": w.products[p], "quantity": q} for p, q in lines], "members": w.members[:3]}
        r = await w.buyer.post("/api/orders", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.text
        r = await admin.post(f"/api/admin/orders/{r.json()['id']}/confirm-transfer", json={"reference": r.json()["payment"]["reference"]})
        assert r.status_code == 200, r.text
        return r.json()

    earlier = await paid([("tea", 1)], "earlier")
    r = await w.supplier_user.post(
        f"/api/supplier/shipments/{earlier['shipments'][0]['id']}/invoice",
        data={"number": "44000000000000000001", "issued_on": datetime.now(SHANGHAI).date().isoformat(), "amount_fen": "10000"},
        files={"file": ("earlier.pdf", pdf("earlier"), "application/pdf")},
    )
    assert r.status_code == 201, r.text
    assert (await w.buyer.post(f"/api/invoices/{r.json()['id']}/accept")).status_code == 200
    w.order = await paid([("tea", 3), ("lychee", 1)], "now")
    [w.tea] = [s for s in w.order["shipments"] if s["supplier_id"] == w.supplier]
    return w


def upload(page, shipment_id: int, number: str, amount: str | None, path) -> None:
    box = page.locator(f"#invoice-{shipment_id}")
    box.get_by_label("发票号码").fill(number)
    if amount is not None:
        box.get_by_label("金额（元）").fill(amount)
    box.get_by_label(re.compile("发票文件")).set_input_files(str(path))
    box.get_by_role("button", name=re.compile("上传发票")).click()


def test_upload_reject_with_a_reason_upload_again_and_accept(server, paid_world, tmp_path):
    w, sid = paid_world, paid_world.tea["id"]
    first, second = tmp_path / "fapiao.pdf", tmp_path / "fapiao-2.pdf"
    first.write_bytes(pdf("first"))
    second.write_bytes(pdf("second"))
    with browser() as chromium, tab(chromium, DESK) as supplier, tab(chromium, DESK) as buyer:
        with tab(chromium, PHONE) as phone:  # the upload form on a phone
            log_in(phone, server, w.supplier_user.user["username"])
            phone.goto(f"{server}/supplier/shipments")
            expect(phone.locator(f"#invoice-{sid} form")).to_be_visible()
            fits_the_phone(phone)
            shoot(phone, "supplier_shipments_invoice_phone")
        log_in(supplier, server, w.supplier_user.user["username"])
        supplier.get_by_role("link", name="发货", exact=True).click()
        box = supplier.locator(f"#invoice-{sid}")
        expect(box.get_by_label("金额（元）")).to_have_value("300.00")  # the shipment's amount, prefilled
        upload(supplier, sid, "44012345678901234567", "299.99", first)  # a wrong amount: said, nothing kept
        expect(supplier.locator(".notice.error")).to_contain_text("须等于包裹当前金额 ¥300.00")
        expect(supplier.locator(f"#invoice-{sid} .badge")).to_have_count(0)
        upload(supplier, sid, "44012345678901234567", "300", first)
        expect(supplier.locator(".notice.ok")).to_contain_text("发票已上传")
        expect(supplier.locator(f"#invoice-{sid} .badge")).to_have_text("待确认")
        shoot(supplier, "supplier_shipments_invoice_desktop")

        with tab(chromium, PHONE) as phone:  # 接受 and 退回 on a phone
            log_in(phone, server, w.buyer.user["username"])
            phone.goto(f"{server}/orders/{w.order['id']}")
            expect(phone.locator(f"#invoice-{sid}").get_by_role("button", name="退回")).to_be_visible()
            fits_the_phone(phone)
            phone.locator(f"#invoice-{sid}").scroll_into_view_if_needed()
            shoot(phone, "buyer_order_invoice_phone")
        log_in(buyer, server, w.buyer.user["username"])
        buyer.goto(f"{server}/orders/{w.order['id']}")
        invoice = buyer.locator(f"#invoice-{sid}")
        expect(invoice).to_contain_text("44012345678901234567")
        with buyer.expect_download() as download:
            invoice.get_by_role("link", name="下载发票").click()
        assert open(download.value.path(), "rb").read() == pdf("first")
        invoice.get_by_label(re.compile("退回原因")).fill("发票抬头应为本工会全称")
        invoice.get_by_role("button", name="退回").click()
        expect(buyer.locator(".notice.ok")).to_contain_text("发票已退回")
        expect(buyer.locator(f"#invoice-{sid} .badge")).to_have_text("已退回")
        expect(buyer.locator(f"#invoice-{sid}")).to_contain_text("发票抬头应为本工会全称")

        supplier.reload()
        expect(supplier.locator(f"#invoice-{sid} .rejection")).to_contain_text("退回原因：发票抬头应为本工会全称")
        upload(supplier, sid, "44012345678901234568", None, second)
        expect(supplier.locator(f"#invoice-{sid} .badge")).to_have_text("待确认")
        expect(supplier.locator(f"#invoice-{sid} form")).to_have_count(0)

        buyer.reload()
        buyer.once("dialog", lambda dialog: dialog.accept())
        buyer.locator(f"#invoice-{sid}").get_by_role("button", name="接受").click()
        expect(buyer.locator(f"#invoice-{sid} .badge")).to_have_text("已接受")
        expect(buyer.locator(f"#invoice-{sid}")).to_contain_text("44012345678901234568")
        shoot(buyer, "buyer_order_invoice_desktop")
        buyer.locator("#history").scroll_into_view_if_needed()
        expect(buyer.locator("#history")).to_contain_text("发票退回")
    with browser() as chromium:
        for user, path in ((w.supplier_user, "/supplier/shipments"), (w.buyer, f"/orders/{w.order['id']}")):
            with tab(chromium, PHONE) as page:  # decided: still no wider than the screen
                log_in(page, server, user.user["username"])
                page.goto(server + path)
                expect(page.locator(f"#invoice-{sid} .badge")).to_have_text("已接受")
                fits_the_phone(page)


def workbook_rows(page, link) -> list[tuple]:
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".xlsx"), download.value.suggested_filename
    with open(download.value.path(), "rb") as file:
        return list(load_workbook(file).active.iter_rows(values_only=True))


def test_the_settlement_and_statement_pages_and_their_workbooks(server, paid_world):
    w = paid_world
    with browser() as chromium:
        with tab(chromium, DESK) as page:
            log_in(page, server, "admin", "admin-password")
            page.get_by_role("link", name="结算对账").click()
            expect(page.locator("#settlement tbody tr")).to_have_count(2)  # this month: two suppliers
            page.select_option("#supplier_id", str(w.supplier))
            page.get_by_role("button", name="查询").click()
            rows = page.locator("#settlement tbody tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("毕节农业合作社")
            expect(rows.first).to_contain_text("¥400.00")  # 1 + 3 boxes of tea
            expect(page.locator("#settlement tfoot")).to_contain_text("¥300.00")  # not yet invoiced
            sheet = workbook_rows(page, page.get_by_role("link", name="导出 Excel"))
            assert sheet[0][:2] == ("供应商ID", "供应商") and [r[1] for r in sheet[1:]] == ["毕节农业合作社"]
            shoot(page, "admin_settlement_desktop")
            page.get_by_role("link", name="各单位对账单 →").click()
            page.select_option("#union_id", str(w.branch))
            page.get_by_role("button", name="查看").click()
            expect(page.locator("#statement tbody tr")).to_have_count(2)
        with tab(chromium, DESK) as page:
            log_in(page, server, w.buyer.user["username"])
            page.get_by_role("link", name="对账单").click()
            table = page.locator("#statement")
            expect(table.locator("tbody tr")).to_have_count(2)
            expect(table).to_contain_text("44000000000000000001")
            expect(table.locator("tfoot")).to_contain_text("¥488.00")  # ¥100.00 earlier, ¥300.00 + ¥88.00 now
            sheet = workbook_rows(page, page.get_by_role("link", name="导出 Excel"))
            assert sheet[0][0] == "订单号" and sheet[-1][0] == "合计" and len(sheet) == 4
            shoot(page, "buyer_statement_desktop")
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.buyer.user["username"])
            page.goto(f"{server}/reports/statement")
            fits_the_phone(page)
            shoot(page, "buyer_statement_phone")
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.auditor.user["username"])
            page.goto(f"{server}/reports/statement")
            page.select_option("#union_id", str(w.branch))
            page.get_by_role("button", name="查看").click()
            expect(page.locator("#statement tbody tr")).to_have_count(2)
            fits_the_phone(page)
            shoot(page, "auditor_statement_phone")
            sheet = workbook_rows(page, page.get_by_role("link", name="导出 Excel"))
            assert sheet[-1][0] == "合计"
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.supplier_user.user["username"])
            page.goto(f"{server}/reports/settlement")
            expect(page.locator("#settlement tbody tr")).to_have_count(1)
            expect(page.locator("main")).not_to_contain_text("茂名荔枝合作社")
            fits_the_phone(page)
            shoot(page, "supplier_settlement_phone")
        with tab(chromium, PHONE) as page:
            log_in(page, server, "admin", "admin-password")
            page.goto(f"{server}/reports/settlement")
            fits_the_phone(page)
            shoot(page, "admin_settlement_phone")
        with tab(chromium, DESK) as page:
            log_in(page, server, w.supplier_user.user["username"])
            page.goto(f"{server}/reports/settlement")
            shoot(page, "supplier_settlement_desktop")
