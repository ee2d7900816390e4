"""对账 (API.md "Invoices and statements"): the suppliers' monthly settlement and a branch's
statement, every figure compared with sums computed here from the orders the test placed, paid
at chosen moments around Shanghai's month and year boundaries, refunded, cancelled and invoiced;
as JSON, CSV (with BOM) and XLSX, inside each caller's scope."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from common.clock import SHANGHAI
from tests import test_payments
from tests.conftest import assert_problem
from tests.fulfilment_world import order_of, shipment_of
from tests.test_invoices import pdf, upload
from tests.test_payments import place

world = test_payments.world  # the fixture

PAID_STATES = {"paid", "partially_refunded", "refunded"}
UTC = timezone.utc


async def at(app, when: datetime, step):
    """Run `step` with the shop's clock at `when`."""
    app.state.clock = lambda: when
    try:
        return await step()
    finally:
        app.state.clock = lambda: datetime.now(UTC)


async def order_at(app, w, api, key, lines, members, when, *, pay=True) -> dict:
    async def step():
        r = await place(api, {"lines": [{"product_id": w.products[p], "quantity": q} for p, q in lines], "members": members}, key)
        assert r.status_code == 201, r.text
        order = r.json()
        if pay:
            r = await w.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
            assert r.status_code == 200, r.text
        return order
    return await at(app, when, step)


@pytest.fixture
async def books(app, world):
    """Orders of the branch (and one of another branch) paid in January, March and April 2026
    (Shanghai) and December 2025, refunded in part and whole, one cancelled, one unpaid; invoices
    accepted, issued and rejected. Answers what the test knows: orders, when each was paid, invoices."""
    w, m = world, world.members
    paid_at = {
        "mar": datetime(2026, 3, 15, 4, 0, tzinfo=UTC),
        "mar_last": datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC),  # 23:59:59 on March 31st in Shanghai
        "apr_first": datetime(2026, 3, 31, 17, 30, tzinfo=UTC),  # 01:30 on April 1st in Shanghai
        "jan_first": datetime(2025, 12, 31, 16, 30, tzinfo=UTC),  # 00:30 on January 1st 2026 in Shanghai
        "dec_last": datetime(2025, 12, 31, 15, 30, tzinfo=UTC),  # 23:30 on December 31st 2025 in Shanghai
        "other": datetime(2026, 4, 20, 8, 0, tzinfo=UTC),
    }
    o = {
        "mar": await order_at(app, w, w.buyer, "mar", [("tea", 2), ("lychee", 1)], m[:3], paid_at["mar"]),
        "mar_last": await order_at(app, w, w.buyer, "mar_last", [("lychee", 2)], m[1:3], paid_at["mar_last"]),
        "apr_first": await order_at(app, w, w.buyer, "apr_first", [("tea", 1), ("rice", 2)], m[:2], paid_at["apr_first"]),
        "jan_first": await order_at(app, w, w.buyer, "jan_first", [("rice", 1)], m[3:4], paid_at["jan_first"]),
        "dec_last": await order_at(app, w, w.buyer, "dec_last", [("tea", 1)], m[4:5], paid_at["dec_last"]),
        "other": await order_at(app, w, w.other_buyer, "other", [("lychee", 1)], w.other_members, paid_at["other"]),
        "cancelled": await order_at(app, w, w.buyer, "cancelled", [("tea", 1)], m[:1], datetime(2026, 4, 2, tzinfo=UTC), pay=False),
        "unpaid": await order_at(app, w, w.buyer, "unpaid", [("rice", 1)], m[:1], datetime(2026, 4, 3, tzinfo=UTC), pay=False),
    }
    assert (await w.buyer.post(f"/api/orders/{o['cancelled']['id']}/cancel")).status_code == 200
    line = {(k, x["product_id"]): x["id"] for k, order in o.items() for x in order["lines"]}
    tea, lychee, rice = (w.products[p] for p in ("tea", "lychee", "rice"))
    refunds = [("mar", tea, 1), ("mar_last", lychee, 2), ("apr_first", rice, 1)]
    for key, product, quantity in refunds:
        r = await w.admin.post(f"/api/orders/{o[key]['id']}/refund", json={"lines": [{"line_id": line[(key, product)], "quantity": quantity}]})
        assert r.status_code == 200, r.text
    o = {k: await order_of(w.admin, order["id"]) for k, order in o.items()}
    # invoices: March's tea accepted, its lychee rejected; April's tea+rice issued; January's rice issued
    invoices = {}
    for key, supplier, api, number in (("mar", w.supplier, w.supplier_user, "10000001"), ("mar", w.other_supplier, w.other_supplier_user, "20000001"),
                                       ("apr_first", w.supplier, w.supplier_user, "10000002"), ("jan_first", w.supplier, w.supplier_user, "10000003")):
        shipment = shipment_of(o[key], supplier)
        amount = sum(x["unit_price_fen"] * (x["quantity"] - x["refunded_quantity"]) for x in o[key]["lines"] if x["supplier_id"] == supplier)
        r = await upload(api, shipment["id"], pdf(number), number=number, amount_fen=amount)
        assert r.status_code == 201, r.text
        invoices[number] = {"order": key, "supplier": supplier, "amount_fen": amount, "id": r.json()["id"], "status": "issued"}
    for number, decision in (("10000001", "accept"), ("20000001", "reject")):
        body = {"reason": "金额有误"} if decision == "reject" else None
        r = await w.buyer.post(f"/api/invoices/{invoices[number]['id']}/{decision}", json=body)
        assert r.status_code == 200, r.text
        invoices[number]["status"] = r.json()["status"]
    # a refund after April's invoice was issued: invoiced above the net, left to invoice below zero
    r = await w.admin.post(f"/api/orders/{o['apr_first']['id']}/refund", json={"lines": [{"line_id": line[("apr_first", tea)], "quantity": 1}]})
    assert r.status_code == 200, r.text
    o["apr_first"] = await order_of(w.admin, o["apr_first"]["id"])
    return {"orders": o, "paid_at": paid_at, "invoices": invoices}


def expected_settlement(books, year: int) -> dict[tuple[int, int], dict]:
    """Per (supplier, Shanghai month) of `year`: sums over the test's own orders."""
    out: dict[tuple[int, int], dict] = defaultdict(lambda: dict(paid_fen=0, refunded_fen=0, invoiced_fen=0, shipments=0))
    for key, order in books["orders"].items():
        if order["status"] not in PAID_STATES:
            continue
        local = books["paid_at"][key].astimezone(SHANGHAI)
        if local.year != year:
            continue
        for line in order["lines"]:
            row = out[(line["supplier_id"], local.month)]
            row["paid_fen"] += line["quantity"] * line["unit_price_fen"]
            row["refunded_fen"] += line["refunded_quantity"] * line["unit_price_fen"]
        for shipment in order["shipments"]:
            out[(shipment["supplier_id"], local.month)]["shipments"] += 1
        for invoice in books["invoices"].values():
            if invoice["order"] == key and invoice["status"] in ("issued", "accepted"):
                out[(invoice["supplier"], local.month)]["invoiced_fen"] += invoice["amount_fen"]
    for row in out.values():
        row["net_fen"] = row["paid_fen"] - row["refunded_fen"]
        row["uninvoiced_fen"] = row["net_fen"] - row["invoiced_fen"]
    return out


def as_keyed(rows: list[dict]) -> dict[tuple[int, int], dict]:
    return {(r["supplier_id"], r["month"]): {k: r[k] for k in ("paid_fen", "refunded_fen", "net_fen", "invoiced_fen", "uninvoiced_fen", "shipments")} for r in rows}


async def settlement(api, **params):
    r = await api.get("/api/reports/settlement", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_settlement_adds_up_by_supplier_and_shanghai_month(world, books):
    rows = await settlement(world.admin, year=2026)
    expected = expected_settlement(books, 2026)
    assert as_keyed(rows) == dict(expected)
    assert {(r["supplier_id"], r["month"]) for r in rows} == {(world.supplier, 1), (world.supplier, 3), (world.other_supplier, 3),
                                                               (world.supplier, 4), (world.other_supplier, 4)}
    names = {world.supplier: "毕节农业合作社", world.other_supplier: "茂名荔枝合作社"}
    assert all(r["year"] == 2026 and r["supplier_name"] == names[r["supplier_id"]] for r in rows)
    # the order paid at 17:30 UTC on March 31st is April's; the one at 15:59:59 UTC is March's
    april = await settlement(world.admin, year=2026, month=4)
    assert as_keyed(april) == {k: v for k, v in expected.items() if k[1] == 4}
    march = await settlement(world.admin, year=2026, month=3)
    assert as_keyed(march) == {k: v for k, v in expected.items() if k[1] == 3}
    by_supplier = {r["supplier_id"]: r for r in march}
    assert by_supplier[world.supplier]["paid_fen"] == 2 * 10000  # March 15th's tea only, not April 1st's
    assert by_supplier[world.other_supplier]["paid_fen"] == 8800 + 2 * 8800  # March 31st's lychee counted
    # the order paid at 23:30 on December 31st 2025 in Shanghai is December 2025's
    assert as_keyed(await settlement(world.admin, year=2025)) == dict(expected_settlement(books, 2025))
    assert [r["month"] for r in await settlement(world.admin, year=2025)] == [12]
    assert await settlement(world.admin, year=2026, month=2) == []
    # the March lychee invoice was rejected: nothing live; April's tea was refunded after its invoice
    assert expected[(world.other_supplier, 3)]["invoiced_fen"] == 0
    assert as_keyed(april)[(world.supplier, 4)]["uninvoiced_fen"] == 2501 - (10000 + 2501) < 0
    # one supplier
    mine = await settlement(world.admin, year=2026, supplier_id=world.supplier)
    assert as_keyed(mine) == {k: v for k, v in expected.items() if k[0] == world.supplier}


async def test_a_supplier_sees_only_its_own_settlement(world, books):
    own = await settlement(world.supplier_user, year=2026)
    assert own == await settlement(world.admin, year=2026, supplier_id=world.supplier)
    assert own == await settlement(world.supplier_user, year=2026, supplier_id=world.supplier)
    r = await world.supplier_user.get("/api/reports/settlement", params={"year": 2026, "supplier_id": world.other_supplier})
    assert_problem(r, 403, "forbidden")
    for api in (world.buyer, world.auditor):
        assert_problem(await api.get("/api/reports/settlement", params={"year": 2026}), 403, "forbidden")
    assert_problem(await world.admin.get("/api/reports/settlement", params={"supplier_id": 999999}), 404, "not_found")
    for bad in ({"month": 13}, {"month": 0}, {"year": 1999}, {"format": "pdf"}):
        assert_problem(await world.admin.get("/api/reports/settlement", params=bad), 400, "validation_failed")


def expected_statement(books, branch: int, year: int) -> dict:
    orders = []
    for key, order in sorted(books["orders"].items(), key=lambda kv: kv[1]["id"]):
        if order["branch_id"] != branch or order["year"] != year:
            continue
        paid = order["total_fen"] if order["status"] in PAID_STATES else 0
        refunded = order["refunded_fen"] if order["status"] in PAID_STATES else 0
        invoices = [{"number": n, "status": i["status"], "amount_fen": i["amount_fen"]}
                    for n, i in sorted(books["invoices"].items(), key=lambda kv: kv[1]["id"]) if i["order"] == key]
        orders.append({"order_id": order["id"], "status": order["status"], "total_fen": order["total_fen"],
                       "paid_fen": paid, "refunded_fen": refunded, "invoices": invoices})
    paid, refunded = sum(o["paid_fen"] for o in orders), sum(o["refunded_fen"] for o in orders)
    invoiced = sum(i["amount_fen"] for o in orders for i in o["invoices"] if i["status"] in ("issued", "accepted"))
    return {"union_id": branch, "year": year, "orders": orders, "paid_fen": paid, "refunded_fen": refunded,
            "net_fen": paid - refunded, "invoiced_fen": invoiced}


async def statement(api, **params):
    r = await api.get("/api/reports/statement", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_branch_statement_adds_up(world, books):
    body = await statement(world.buyer, year=2026)
    expected = expected_statement(books, world.branch, 2026)
    placed = {o["order_id"]: o.pop("placed_at") for o in body["orders"]}
    paid_at = {o["order_id"]: o.pop("paid_at") for o in body["orders"]}
    assert body == expected
    keys = {order["id"]: key for key, order in books["orders"].items()}
    # cancelled and unpaid orders are listed, with nothing paid; the other branch's order is not
    assert {keys[i] for i in placed} == {"mar", "mar_last", "apr_first", "jan_first", "cancelled", "unpaid"}
    for order_id, when in placed.items():
        assert datetime.fromisoformat(when) == datetime.fromisoformat(books["orders"][keys[order_id]]["created_at"])
        assert when.endswith("+08:00")
        expected_paid = books["paid_at"].get(keys[order_id]) if keys[order_id] not in ("cancelled", "unpaid") else None
        assert (datetime.fromisoformat(paid_at[order_id]) if paid_at[order_id] else None) == expected_paid
    # December 31st 2025 in Shanghai: the 2025 statement
    body_2025 = await statement(world.buyer, year=2025)
    for o in body_2025["orders"]:
        del o["placed_at"], o["paid_at"]
    assert body_2025 == expected_statement(books, world.branch, 2025) and len(body_2025["orders"]) == 1
    # the same for an auditor over the branch and an admin; the other branch's buyer sees only its own
    for api in (world.auditor, world.admin):
        assert await statement(api, year=2026, union_id=world.branch) == await statement(world.buyer, year=2026)
    assert_problem(await world.other_buyer.get("/api/reports/statement", params={"union_id": world.branch}), 403, "forbidden")
    other = await statement(world.other_buyer, year=2026)
    assert [o["order_id"] for o in other["orders"]] == [books["orders"]["other"]["id"]]
    assert other["paid_fen"] == books["orders"]["other"]["total_fen"]
    assert_problem(await world.supplier_user.get("/api/reports/statement", params={"union_id": world.branch}), 403, "forbidden")
    for api, params in ((world.admin, {}), (world.auditor, {}), (world.admin, {"union_id": world.district})):
        body = assert_problem(await api.get("/api/reports/statement", params=params), 400, "validation_failed")
        assert body["errors"][0]["field"] == "union_id"
    assert_problem(await world.admin.get("/api/reports/statement", params={"union_id": 999999}), 404, "not_found")


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_rows(response) -> list[tuple]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    return list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


async def test_settlement_and_statement_as_csv_and_xlsx(world, books):
    rows = await settlement(world.admin, year=2026)
    got = csv_rows(await world.admin.get("/api/reports/settlement", params={"year": 2026, "format": "csv"}))
    assert got[0] == ["供应商ID", "供应商", "年", "月", "已付(元)", "已退(元)", "净额(元)", "已开票(元)", "未开票(元)", "发货单数"]
    assert got[1:] == [[str(r["supplier_id"]), r["supplier_name"], "2026", str(r["month"]), *(yuan(r[k]) for k in
                        ("paid_fen", "refunded_fen", "net_fen", "invoiced_fen", "uninvoiced_fen")), str(r["shipments"])] for r in rows]
    sheet = xlsx_rows(await world.supplier_user.get("/api/reports/settlement", params={"year": 2026, "format": "xlsx"}))
    mine = [r for r in rows if r["supplier_id"] == world.supplier]
    assert [Decimal(str(row[4])) for row in sheet[1:]] == [Decimal(r["paid_fen"]) / 100 for r in mine]
    assert [row[9] for row in sheet[1:]] == [r["shipments"] for r in mine]

    body = await statement(world.buyer, year=2026)
    got = csv_rows(await world.buyer.get("/api/reports/statement", params={"year": 2026, "format": "csv"}))
    assert got[0][0] == "订单号" and len(got) == len(body["orders"]) + 2
    assert [row[0] for row in got[1:-1]] == [str(o["order_id"]) for o in body["orders"]]
    assert [row[5] for row in got[1:-1]] == [yuan(o["paid_fen"]) for o in body["orders"]]
    assert got[-1][0] == "合计" and got[-1][5:8] == [yuan(body["paid_fen"]), yuan(body["refunded_fen"]), yuan(body["net_fen"])]
    mar = next(row for row in got if row[0] == str(books["orders"]["mar"]["id"]))
    assert "10000001 已接受" in mar[8] and "20000001 已退回" in mar[8]  # the exports speak Chinese
    assert mar[3] in ("已付款", "部分退款", "已退款") and re.fullmatch(r"2026-03-\d\d \d\d:\d\d:\d\d", mar[1])
    sheet = xlsx_rows(await world.auditor.get("/api/reports/statement", params={"year": 2026, "union_id": world.branch, "format": "xlsx"}))
    assert all(isinstance(row[1], datetime) for row in sheet[1:-1])  # real Excel date-times
    assert sheet[-1][0] == "合计" and Decimal(str(sheet[-1][5])) == Decimal(body["paid_fen"]) / 100
    assert Decimal(str(sheet[-1][7])) == Decimal(body["net_fen"]) / 100
