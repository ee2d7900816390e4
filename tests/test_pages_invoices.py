"""Invoices on the pages over HTTP: the supplier uploads a shipment's invoice on its shipments
page (a multipart form with the CSRF token: 发票号码, 开票日期, 金额 in yuan, the file), the
branch's buyer accepts or rejects it with a reason on the order page, the supplier reads the
reason and uploads again. Every refusal says why in Chinese and leaves no row and no file;
another supplier's shipment and another branch's invoice are refused; auditors and admins see
and download but do not decide."""

from __future__ import annotations

from datetime import datetime, timedelta

from common.clock import SHANGHAI
from shop.fulfilment.tables import Invoice
from tests import test_payments
from tests.fulfilment_world import actions, paid_order, shipment_of
from tests.test_invoices import MB, image, left_behind, pdf
from tests.test_web import as_user, page_login, text_of, token

world = test_payments.world  # the fixture

TODAY = datetime.now(SHANGHAI).date().isoformat()


async def send(client, shipment_id, content=None, *, number="12345678", issued_on=TODAY, amount="200.00",
               name="invoice.pdf", csrf=True, file=True):
    data = {"number": number, "issued_on": issued_on, "amount": amount}
    if csrf:
        data["_csrf_token"] = await token(client)
    files = {"file": (name, pdf() if content is None else content, "application/pdf")} if file else {"file": ("", b"", "application/octet-stream")}
    return await client.post(f"/supplier/shipments/{shipment_id}/invoice", data=data, files=files)


async def decide(client, invoice_id, verdict, reason=None):
    data = {"_csrf_token": await token(client)}
    if reason is not None:
        data["reason"] = reason
    return await client.post(f"/invoices/{invoice_id}/{verdict}", data=data)


async def invoices_now() -> list[tuple]:
    return [tuple(r.values()) for r in await Invoice.select(Invoice.id, Invoice.status, Invoice.decision_reason).order_by(Invoice.id)]


async def test_upload_reject_with_a_reason_upload_again_and_accept(client, world):
    order = await paid_order(world)
    tea = shipment_of(order, world.supplier)
    await as_user(client, world.supplier_user)
    page = await client.get("/supplier/shipments")
    assert page.status_code == 200
    assert f'action="/supplier/shipments/{tea["id"]}/invoice" enctype="multipart/form-data"' in page.text
    assert f'id="amount-{tea["id"]}" name="amount" value="200.00"' in page.text  # the shipment's amount, prefilled
    assert "还没有上传发票" in text_of(page.text)

    r = await send(client, tea["id"], pdf("first"), number="44012345678901234567")
    assert r.status_code == 303 and r.headers["location"] == f"/supplier/shipments?ok=invoice_issued#shipment-{tea['id']}"
    page = text_of((await client.get(r.headers["location"])).text)
    assert "发票已上传" in page and "44012345678901234567" in page and "待确认" in page and "等待采购单位确认" in page
    [invoice] = await Invoice.select(Invoice.id, Invoice.amount_fen)
    assert invoice["amount_fen"] == 20000

    # the buyer's order page: the invoice, its file, 接受 and 退回
    await as_user(client, world.buyer)
    html = (await client.get(f"/orders/{order['id']}")).text
    assert f'href="/api/invoices/{invoice["id"]}/file"' in html
    assert f'action="/invoices/{invoice["id"]}/accept"' in html and f'action="/invoices/{invoice["id"]}/reject"' in html
    assert "44012345678901234567" in text_of(html) and "待确认" in text_of(html)
    got = await client.get(f"/api/invoices/{invoice['id']}/file")  # the cookie is enough to read it
    assert got.status_code == 200 and got.content == pdf("first")
    # a rejection needs its reason: nothing changes without one
    before = await invoices_now()
    for reason in (None, "", "   "):
        r = await decide(client, invoice["id"], "reject", reason)
        assert r.status_code == 400 and "请填写退回原因" in text_of(r.text)
    assert await invoices_now() == before
    r = await decide(client, invoice["id"], "reject", "抬头 错误，应为本工会全称")
    assert r.status_code == 303 and r.headers["location"] == f"/orders/{order['id']}?ok=invoice_rejected#shipment-{tea['id']}"
    page = text_of((await client.get(r.headers["location"])).text)
    assert "发票已退回" in page and "已退回" in page and "抬头 错误，应为本工会全称" in page
    r = await decide(client, invoice["id"], "accept")  # no longer issued: said on the page
    assert r.status_code == 409 and "发票当前为“已退回”，不能接受" in text_of(r.text)

    # the supplier reads the reason and uploads again (the same number may be used again)
    await as_user(client, world.supplier_user)
    page = text_of((await client.get("/supplier/shipments")).text)
    assert "已退回" in page and "退回原因： 抬头 错误，应为本工会全称" in page and "重新上传发票" in page
    r = await send(client, tea["id"], pdf("second"), number="44012345678901234567", amount="¥200")
    assert r.status_code == 303, text_of(r.text)
    page = (await client.get("/supplier/shipments")).text
    assert "重新上传发票" not in page and f'/supplier/shipments/{tea["id"]}/invoice"' not in page  # live: no form

    await as_user(client, world.buyer)
    second = (await Invoice.select(Invoice.id).order_by(Invoice.id, ascending=False).first())["id"]
    r = await decide(client, second, "accept")
    assert r.status_code == 303 and "ok=invoice_accepted" in r.headers["location"]
    html = (await client.get(f"/orders/{order['id']}")).text
    assert "已接受" in text_of(html) and f'action="/invoices/{second}/accept"' not in html
    assert (await actions(world.buyer, order["id"]))[-4:] == ["invoice_issued", "invoice_rejected", "invoice_issued", "invoice_accepted"]
    assert [s for _, s, _ in await invoices_now()] == ["rejected", "accepted"]


async def test_bad_uploads_say_why_and_change_nothing(client, world):
    order = await paid_order(world)
    tea = shipment_of(order, world.supplier)
    await as_user(client, world.supplier_user)
    before = await left_behind()
    events = await actions(world.buyer, order["id"])
    tomorrow = (datetime.now(SHANGHAI).date() + timedelta(days=2)).isoformat()
    refusals = [
        (dict(content=b"just some text, named like a PDF"), 400, "发票须为 PDF、OFD、PNG 或 JPEG 文件"),
        (dict(content=image("WEBP"), name="invoice.png"), 400, "发票须为 PDF、OFD、PNG 或 JPEG 文件"),
        (dict(content=b"%PDF-1.7\n" + b"0" * (5 * MB)), 400, "文件：文件超过 5 MB"),
        (dict(content=b"%PDF-1.7\n" + b"0" * (6 * MB)), 413, "文件太大"),  # cut off while the CSRF check reads the form
        (dict(content=b""), 400, "文件：文件是空的"),
        (dict(file=False), 400, "请选择发票文件"),
        (dict(number="1234567"), 400, "发票号码：应为 8 到 20 位字母或数字"),
        (dict(number="发票12345678"), 400, "发票号码：应为 8 到 20 位字母或数字"),
        (dict(number=""), 400, "请填写发票号码"),
        (dict(issued_on="2026-02-30"), 400, "开票日期：请填写有效日期"),
        (dict(issued_on=tomorrow), 400, "开票日期：不能晚于今天"),
        (dict(issued_on=""), 400, "请填写开票日期"),
        (dict(amount="199.99"), 400, "金额：须等于包裹当前金额 ¥200.00"),
        (dict(amount="288"), 400, "金额：须等于包裹当前金额 ¥200.00"),
        (dict(amount="二百"), 400, "金额：请填写数字金额"),
        (dict(amount="200.001"), 400, "金额：金额最多两位小数"),
        (dict(amount="0"), 400, "金额须大于 0"),
        (dict(amount=""), 400, "金额：请填写金额"),
        (dict(csrf=False), 403, "页面已过期"),
    ]
    for kw, status, said in refusals:
        r = await send(client, tea["id"], **kw)
        assert r.status_code == status, (kw.keys(), r.status_code, text_of(r.text)[:300])
        assert said in text_of(r.text), (kw.keys(), text_of(r.text)[:600])
        assert await left_behind() == before, kw.keys()
    # what was typed is shown again
    r = await send(client, tea["id"], number="87654321", amount="199.99")
    assert 'value="87654321"' in r.text and 'value="199.99"' in r.text
    assert await actions(world.buyer, order["id"]) == events


async def test_another_suppliers_shipment_and_another_branchs_invoice_are_refused(client, world, make_user):
    order = await paid_order(world)
    tea, lychee = shipment_of(order, world.supplier), shipment_of(order, world.other_supplier)
    await as_user(client, world.other_supplier_user)
    before = await left_behind()
    r = await send(client, tea["id"], amount="200.00")
    assert r.status_code == 403 and "没有权限" in text_of(r.text)
    r = await send(client, tea["id"], number="x")  # refused as another's before its fields are read
    assert r.status_code == 403
    assert (await send(client, 999999)).status_code == 404
    assert await left_behind() == before
    page = (await client.get("/supplier/shipments")).text
    assert f"shipment-{lychee['id']}" in page and f"shipment-{tea['id']}" not in page

    await as_user(client, world.supplier_user)
    assert (await send(client, tea["id"])).status_code == 303
    [invoice] = await Invoice.select(Invoice.id)
    before = await invoices_now()
    await as_user(client, world.other_buyer)
    for verdict, reason in (("accept", None), ("reject", "不是我们的"), ("reject", "")):
        r = await decide(client, invoice["id"], verdict, reason)
        assert r.status_code == 403, (verdict, r.status_code)
    assert (await decide(client, 999999, "accept")).status_code == 404
    assert (await client.get(f"/api/invoices/{invoice['id']}/file")).status_code == 403
    # the supplier cannot decide its own invoice; auditors and admins see and download, but do not decide
    await as_user(client, world.supplier_user)
    assert (await decide(client, invoice["id"], "accept")).status_code == 403
    outsider = await make_user("auditor", union_id=world.other_branch)
    for who in (world.auditor, "admin"):
        if who == "admin":
            assert (await page_login(client, "admin", "admin-password")).status_code == 303
        else:
            await as_user(client, who)
        html = (await client.get(f"/orders/{order['id']}")).text
        assert f'href="/api/invoices/{invoice["id"]}/file"' in html and "待确认" in text_of(html)
        assert f'action="/invoices/{invoice["id"]}/accept"' not in html and f'action="/invoices/{invoice["id"]}/reject"' not in html
        assert (await client.get(f"/api/invoices/{invoice['id']}/file")).status_code == 200
        assert (await decide(client, invoice["id"], "accept")).status_code == 403
    await as_user(client, outsider)
    assert (await client.get(f"/api/invoices/{invoice['id']}/file")).status_code == 403
    assert await invoices_now() == before


async def test_a_cancelled_shipment_has_no_upload_form(client, world):
    order = await paid_order(world)
    tea = shipment_of(order, world.supplier)
    [line] = [x for x in order["lines"] if x["product_id"] == world.products["tea"]]
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": line["id"], "quantity": line["quantity"]}]})
    assert r.status_code == 200, r.text
    await as_user(client, world.supplier_user)
    page = (await client.get("/supplier/shipments")).text
    assert f'/supplier/shipments/{tea["id"]}/invoice"' not in page
    r = await send(client, tea["id"], amount="0.01")
    assert r.status_code == 409 and "包裹已取消（全部退款），无需开票" in text_of(r.text)
