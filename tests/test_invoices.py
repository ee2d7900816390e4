"""Invoices (API.md "Invoices and statements"): the supplier uploads one per shipment (its
amount, a PDF, OFD, PNG or JPEG recognised by content, at most 5 MB), the branch's buyer accepts
or rejects it, each step an order event and a notification; the file is stored once by content
and downloaded only by those who may see it. Every refusal leaves no row and no file behind."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from PIL import Image

from common.clock import SHANGHAI
from common.tables import StoredFile
from shop.fulfilment.tables import Invoice
from shop.notifications.tables import Notification
from shop.orders.tables import OrderEvent
from tests import test_payments
from tests.conftest import assert_problem
from tests.fulfilment_world import actions, inbox, order_of, paid_order, shipment_of
from tests.server import running_server
from tests.test_photos import in_progress, kept_files

world = test_payments.world  # the fixture

MB = 1024 * 1024
TODAY = datetime.now(SHANGHAI).date().isoformat()


def pdf(tag: str = "") -> bytes:
    return b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% " + tag.encode() + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def ofd(tag: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("OFD.xml", f'<?xml version="1.0"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" DocType="OFD">{tag}</ofd:OFD>')
        z.writestr("Doc_0/Document.xml", "<ofd:Document/>")
    return buffer.getvalue()


def image(kind: str, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(buffer, kind)
    return buffer.getvalue()


def not_ofd_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


async def upload(api, shipment_id, content=None, *, number="12345678", issued_on=TODAY, amount_fen=20000,
                 name="invoice.pdf", content_type="application/pdf", fields=None):
    data = {"number": number, "issued_on": issued_on, "amount_fen": str(amount_fen)} if fields is None else fields
    files = {"file": (name, pdf() if content is None else content, content_type)}
    return await api.post(f"/api/supplier/shipments/{shipment_id}/invoice", data=data, files=files)


async def tea_shipment(world, key="f-1", tea=2) -> tuple[dict, dict]:
    order = await paid_order(world, key=key, tea=tea)
    return order, shipment_of(order, world.supplier)


async def left_behind() -> tuple:
    return await Invoice.count(), await StoredFile.count(), kept_files(), in_progress()


async def test_the_supplier_uploads_the_buyer_accepts_and_each_step_is_told(world):
    order, tea = await tea_shipment(world)
    r = await upload(world.supplier_user, tea["id"], pdf("one"), number="44012345678901234567")
    assert r.status_code == 201, r.text
    invoice = r.json()
    assert {k: invoice[k] for k in ("shipment_id", "number", "issued_on", "amount_fen", "status")} == {
        "shipment_id": tea["id"], "number": "44012345678901234567", "issued_on": TODAY, "amount_fen": 20000, "status": "issued"}
    assert invoice["file_url"] == f"/api/invoices/{invoice['id']}/file"
    brief = {"id": invoice["id"], "number": "44012345678901234567", "status": "issued", "amount_fen": 20000}
    # the shipment answers it, as its order and as the supplier's list show it
    assert shipment_of(await order_of(world.buyer, order["id"]), world.supplier)["invoice"] == brief
    assert shipment_of(await order_of(world.buyer, order["id"]), world.other_supplier)["invoice"] is None
    [item] = (await world.supplier_user.get("/api/supplier/shipments")).json()["items"]
    assert item["invoice"] == brief
    # an event, and the branch's buyers hear of it
    events = (await world.buyer.get(f"/api/orders/{order['id']}/events")).json()
    assert events[-1]["action"] == "invoice_issued" and events[-1]["actor"]["id"] == world.supplier_user.user["id"]
    assert "44012345678901234567" in events[-1]["detail"]
    box = await inbox(world.buyer)
    assert [(n["kind"], n["order_id"]) for n in box["items"]] == [("invoice_issued", order["id"])]
    assert "200.00 元" in box["items"][0]["title"]
    # a second one while it is issued: 409
    assert_problem(await upload(world.supplier_user, tea["id"], pdf("two"), number="87654321"), 409, "invalid_state")
    # another branch's buyer, the supplier: 403; the branch's buyer accepts
    assert_problem(await world.other_buyer.post(f"/api/invoices/{invoice['id']}/accept"), 403, "forbidden")
    assert_problem(await world.supplier_user.post(f"/api/invoices/{invoice['id']}/accept"), 403, "forbidden")
    assert_problem(await world.buyer.post("/api/invoices/999999/accept"), 404, "not_found")
    r = await world.buyer.post(f"/api/invoices/{invoice['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["decided_at"]
    assert_problem(await world.buyer.post(f"/api/invoices/{invoice['id']}/accept"), 409, "invalid_state")
    assert_problem(await world.buyer.post(f"/api/invoices/{invoice['id']}/reject", json={"reason": "迟了"}), 409, "invalid_state")
    assert_problem(await upload(world.supplier_user, tea["id"], pdf("three"), number="87654321"), 409, "invalid_state")
    assert (await actions(world.buyer, order["id"]))[-2:] == ["invoice_issued", "invoice_accepted"]
    box = await inbox(world.supplier_user)
    assert box["items"][0]["kind"] == "invoice_decided" and "已被采购方确认" in box["items"][0]["title"]
    assert (await inbox(world.other_supplier_user))["items"][0]["kind"] == "order_to_ship"  # told nothing of it
    assert shipment_of(await order_of(world.buyer, order["id"]), world.supplier)["invoice"]["status"] == "accepted"


async def test_a_rejected_invoice_is_followed_by_a_new_one(world):
    order, tea = await tea_shipment(world)
    first = (await upload(world.supplier_user, tea["id"], pdf("first"))).json()
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "extra": 1}):
        assert_problem(await world.buyer.post(f"/api/invoices/{first['id']}/reject", json=body), 400, "validation_failed")
    assert_problem(await world.other_buyer.post(f"/api/invoices/{first['id']}/reject", json={"reason": "不是我们的"}), 403, "forbidden")
    r = await world.buyer.post(f"/api/invoices/{first['id']}/reject", json={"reason": "抬头错误"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["decision_reason"] == "抬头错误"
    box = await inbox(world.supplier_user)
    assert box["items"][0]["kind"] == "invoice_decided" and "抬头错误" in box["items"][0]["title"]
    assert shipment_of(await order_of(world.buyer, order["id"]), world.supplier)["invoice"]["status"] == "rejected"
    # the same number may be used again once it was rejected (a corrected upload)
    r = await upload(world.supplier_user, tea["id"], pdf("second"))
    assert r.status_code == 201, r.text
    second = r.json()
    assert shipment_of(await order_of(world.buyer, order["id"]), world.supplier)["invoice"]["id"] == second["id"]
    assert (await actions(world.buyer, order["id"]))[-3:] == ["invoice_issued", "invoice_rejected", "invoice_issued"]
    rejected = (await world.buyer.get(f"/api/orders/{order['id']}/events")).json()[-2]
    assert "抬头错误" in rejected["detail"] and rejected["actor"]["id"] == world.buyer.user["id"]


async def test_every_kind_is_recognised_by_content_and_served_as_it_came(world, make_user):
    _, tea = await tea_shipment(world)
    outsider_auditor = await make_user("auditor", union_id=world.other_branch)
    kinds = [
        (pdf("kind"), "application/pdf", "pdf", "scan.png", "image/png"),
        (ofd("kind"), "application/ofd", "ofd", "invoice.zip", "application/zip"),
        (image("PNG"), "image/png", "png", "invoice.pdf", "application/pdf"),
        (image("JPEG"), "image/jpeg", "jpg", "invoice", "application/octet-stream"),
    ]
    for content, kind, ext, name, claimed in kinds:
        r = await upload(world.supplier_user, tea["id"], content, name=name, content_type=claimed)
        assert r.status_code == 201, (kind, r.text)
        url = r.json()["file_url"]
        for api in (world.supplier_user, world.buyer, world.auditor, world.admin):
            got = await api.get(url)
            assert got.status_code == 200, (kind, got.text)
            assert got.content == content  # the original bytes, not re-encoded
            assert got.headers["content-type"].split(";")[0] == kind
            assert got.headers["content-disposition"].startswith("attachment")
            assert f'invoice-12345678.{ext}' in got.headers["content-disposition"]
            assert got.headers["x-content-type-options"] == "nosniff"
        assert (await world.supplier_user.get(url, headers={"If-None-Match": got.headers["etag"]})).status_code == 304
        got = await world.buyer.get(url.removesuffix("/file"))
        assert got.status_code == 200 and got.json()["id"] == r.json()["id"]
        for api in (world.other_buyer, world.other_supplier_user, outsider_auditor):
            assert_problem(await api.get(url), 403, "forbidden")
            assert_problem(await api.get(url.removesuffix("/file")), 403, "forbidden")
        await world.buyer.post(f"/api/invoices/{r.json()['id']}/reject", json={"reason": "换一种"})
    assert_problem(await world.admin.get("/api/invoices/999999/file"), 404, "not_found")
    assert await StoredFile.count() == 4


async def test_refused_uploads_leave_no_row_and_no_file(world):
    order, tea = await tea_shipment(world)
    url_ok = await upload(world.supplier_user, tea["id"], pdf("ok"), number="00000001")  # then rejected: a clean slate
    await world.buyer.post(f"/api/invoices/{url_ok.json()['id']}/reject", json={"reason": "test"})
    before = await left_behind()
    events = await actions(world.buyer, order["id"])
    told = await Notification.count()
    big = b"%PDF-1.7\n" + b"0" * (5 * MB - 9 + 1)
    refusals = [
        ("amount_fen", dict(amount_fen=19999)),
        ("amount_fen", dict(amount_fen=28800)),
        ("file", dict(content=image("WEBP"), name="invoice.pdf")),  # WebP is no invoice
        ("file", dict(content=b"just some text, named like a PDF", name="invoice.pdf")),
        ("file", dict(content=not_ofd_zip(), name="invoice.ofd", content_type="application/ofd")),
        ("file", dict(content=b"PK\x03\x04 broken zip", name="invoice.ofd")),
        ("file", dict(content=big)),  # 5 MB and a byte: read to the cap, refused
        ("file", dict(content=b"%PDF-1.7\n" + b"0" * (6 * MB))),  # past the route's body limit
        ("file", dict(content=b"")),
        ("number", dict(number="1234567")),
        ("number", dict(number="12345678-9")),
        ("number", dict(number="发票12345678")),
        ("issued_on", dict(issued_on="2026-02-30")),
        ("issued_on", dict(issued_on="20260301")),
        ("issued_on", dict(issued_on="1999-12-31")),
        ("issued_on", dict(issued_on=(datetime.now(SHANGHAI).date() + timedelta(days=2)).isoformat())),
        ("amount_fen", dict(amount_fen="200.00")),
        ("amount_fen", dict(amount_fen="-20000")),
        ("amount_fen", dict(amount_fen="0")),
        ("number", dict(fields={"issued_on": TODAY, "amount_fen": "20000"})),
    ]
    for field, kw in refusals:
        body = assert_problem(await upload(world.supplier_user, tea["id"], **kw), 400, "validation_failed")
        assert body["errors"][0]["field"] == field, (kw.keys(), body)
        assert await left_behind() == before, kw.keys()
    # the file missing altogether
    r = await world.supplier_user.post(f"/api/supplier/shipments/{tea['id']}/invoice", data={"number": "12345678", "issued_on": TODAY, "amount_fen": "20000"})
    assert assert_problem(r, 400, "validation_failed")["errors"][0]["field"] == "file"
    # another supplier's shipment, one that does not exist, a buyer: 403, 404, 403
    assert_problem(await upload(world.other_supplier_user, tea["id"]), 403, "forbidden")
    assert_problem(await upload(world.supplier_user, 999999), 404, "not_found")
    assert_problem(await upload(world.buyer, tea["id"]), 403, "forbidden")
    assert await left_behind() == before
    assert await actions(world.buyer, order["id"]) == events and await Notification.count() == told


async def test_the_amount_is_the_shipment_less_refunds_and_a_cancelled_shipment_takes_none(world):
    order, tea = await tea_shipment(world, tea=3)
    tea_line = next(line["id"] for line in order["lines"] if line["product_id"] == world.products["tea"])
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": tea_line, "quantity": 1}]})
    assert r.status_code == 200 and r.json()["status"] == "partially_refunded"
    assert_problem(await upload(world.supplier_user, tea["id"], amount_fen=30000), 400, "validation_failed")
    r = await upload(world.supplier_user, tea["id"], amount_fen=20000)
    assert r.status_code == 201, r.text
    # the rest of it refunded: the shipment is cancelled; its invoice stays, a new one is refused
    await world.buyer.post(f"/api/invoices/{r.json()['id']}/reject", json={"reason": "已全部退款"})
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": tea_line, "quantity": 2}]})
    assert shipment_of(r.json(), world.supplier)["status"] == "cancelled"
    before = await left_behind()
    body = assert_problem(await upload(world.supplier_user, tea["id"], pdf("late"), number="99999999", amount_fen=0), 400, "validation_failed")
    assert body["errors"][0]["field"] == "amount_fen"
    assert_problem(await upload(world.supplier_user, tea["id"], pdf("late"), number="99999999", amount_fen=1), 409, "invalid_state")
    assert await left_behind() == before
    # the order, partially refunded, still takes an invoice for its other shipment
    lychee = shipment_of(order, world.other_supplier)
    assert (await upload(world.other_supplier_user, lychee["id"], amount_fen=8800)).status_code == 201


async def test_the_same_file_is_stored_once_and_a_live_number_is_used_once(world):
    _, first = await tea_shipment(world, key="a")
    _, second = await tea_shipment(world, key="b")
    same, files_before = pdf("the same scan"), kept_files()
    assert (await upload(world.supplier_user, first["id"], same, number="11111111")).status_code == 201
    assert_problem(await upload(world.supplier_user, second["id"], same, number="11111111"), 409, "invalid_state")
    assert (await upload(world.supplier_user, second["id"], same, number="22222222")).status_code == 201
    assert await Invoice.count() == 2 and await StoredFile.count() == 1 and len(kept_files() - files_before) == 1
    files = {r["file"] for r in await Invoice.select(Invoice.file)}
    assert len(files) == 1


async def test_uploads_racing_for_one_shipment_leave_one_invoice(world):
    order, tea = await tea_shipment(world)
    files_before = kept_files()
    answers = await asyncio.gather(
        *[upload(world.supplier_user, tea["id"], pdf(f"race {i}"), number=f"3000000{i}") for i in range(4)]
    )
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409], [r.text for r in answers]
    assert await Invoice.count() == 1 and await StoredFile.count() == 1 and len(kept_files() - files_before) == 1
    assert await OrderEvent.count().where(OrderEvent.action == "invoice_issued") == 1
    assert (await inbox(world.buyer))["unread"] == 1
    assert in_progress() == []


async def test_a_buyer_deciding_twice_at_once_decides_once(world):
    order, tea = await tea_shipment(world)
    invoice = (await upload(world.supplier_user, tea["id"])).json()
    answers = await asyncio.gather(
        world.buyer.post(f"/api/invoices/{invoice['id']}/accept"),
        world.buyer.post(f"/api/invoices/{invoice['id']}/reject", json={"reason": "重复"}),
        world.buyer.post(f"/api/invoices/{invoice['id']}/accept"),
    )
    assert sorted(r.status_code for r in answers) == [200, 409, 409]
    decided = [a for a in await actions(world.buyer, order["id"]) if a in ("invoice_accepted", "invoice_rejected")]
    assert len(decided) == 1
    when = (await Invoice.select(Invoice.decided_at).first())["decided_at"]
    assert when is not None and when <= datetime.now(timezone.utc)


@pytest.mark.slow_suite
async def test_uploads_racing_on_two_server_workers_leave_one_invoice(world):
    """The same race against the real server (two worker processes), over HTTP."""
    order, tea = await tea_shipment(world)
    files_before = kept_files()
    with running_server(workers=2) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {world.supplier_user.token}"}) as client:
            answers = await asyncio.gather(*[
                client.post(f"/api/supplier/shipments/{tea['id']}/invoice",
                            data={"number": f"4000000{i}", "issued_on": TODAY, "amount_fen": "20000"},
                            files={"file": ("invoice.pdf", pdf(f"server race {i}"), "application/pdf")})
                for i in range(6)
            ])
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5, [r.text for r in answers]
    assert await Invoice.count() == 1 and len(kept_files() - files_before) == 1
    assert (await actions(world.buyer, order["id"])).count("invoice_issued") == 1
