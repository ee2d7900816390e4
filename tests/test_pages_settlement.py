"""对账 on the pages over HTTP: the settlement page (结算: an admin picks a supplier or all, a
year and a month; a supplier sees its own) and the statement page (对账单: a buyer its branch,
an auditor a branch of its subtree, an admin any branch), each figure the API's, in yuan, with
links to the API's CSV and XLSX of the same report; every scope refused as the API refuses it."""

from __future__ import annotations

import html
import re

from shop.web.ui import yuan
from tests import test_payments, test_settlement
from tests.test_settlement import expected_settlement, expected_statement, xlsx_rows
from tests.test_web import as_user, page_login, text_of

world = test_payments.world  # the fixtures
books = test_settlement.books


def table_rows(page: str, table_id: str) -> list[str]:
    """The text of each row of the table's body."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body, page[:2000]
    return [text_of(row).strip() for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body[1], re.S)]


def footer(page: str, table_id: str) -> str:
    return text_of(re.search(rf'<table id="{table_id}">.*?<tfoot>(.*?)</tfoot>', page, re.S)[1]).strip()


def link(page: str, link_id: str) -> str:
    return html.unescape(re.search(rf'id="{link_id}" href="([^"]+)"', page)[1])


def settlement_row(row: dict, name: str | None) -> str:
    cells = [f"{row['year']} 年 {row['month']} 月", *([name] if name else []),
             *(yuan(row[k]) for k in ("paid_fen", "refunded_fen", "net_fen", "invoiced_fen", "uninvoiced_fen")), str(row["shipments"])]
    return " ".join(cells)


async def as_admin(client) -> None:
    assert (await page_login(client, "admin", "admin-password")).status_code == 303


async def test_the_admin_reads_the_settlement_by_supplier_and_month(client, world, books):
    names = {world.supplier: "毕节农业合作社", world.other_supplier: "茂名荔枝合作社"}
    expected = expected_settlement(books, 2026)
    await as_admin(client)
    page = await client.get("/reports/settlement?year=2026")
    assert page.status_code == 200
    assert '<a href="/reports/settlement"' in page.text and "结算" in page.text  # in the navigation
    keys = sorted(expected, key=lambda k: (k[1], k[0]))
    want = [settlement_row({"year": 2026, "month": m, **expected[(s, m)]}, names[s]) for s, m in keys]
    assert table_rows(page.text, "settlement") == want
    total = {k: sum(v[k] for v in expected.values()) for k in ("paid_fen", "refunded_fen", "net_fen", "invoiced_fen", "uninvoiced_fen", "shipments")}
    assert footer(page.text, "settlement") == " ".join(["合计", *(yuan(total[k]) for k in list(total)[:5]), str(total["shipments"])])
    assert "warn-text" in page.text  # April's tea refunded after its invoice: below zero, marked
    # one supplier, one month
    page = await client.get(f"/reports/settlement?year=2026&month=3&supplier_id={world.supplier}")
    assert table_rows(page.text, "settlement") == [settlement_row({"year": 2026, "month": 3, **expected[(world.supplier, 3)]}, names[world.supplier])]
    assert f'<option value="{world.supplier}" selected>' in page.text
    # its downloads are the API's, for the same choice
    csv_url, xlsx_url = link(page.text, "settlement-csv"), link(page.text, "settlement-xlsx")
    assert csv_url == f"/api/reports/settlement?year=2026&month=3&supplier_id={world.supplier}&format=csv"
    sheet = xlsx_rows(await client.get(xlsx_url))
    assert sheet[0][1] == "供应商" and [(row[0], row[3]) for row in sheet[1:]] == [(world.supplier, 3)]
    got = await client.get(csv_url)
    assert got.status_code == 200 and got.content.startswith("\ufeff".encode())
    # nothing paid in February; a supplier there is not: 404; nonsense is read as nothing chosen
    assert "2026 年 2 月没有付款的订单" in text_of((await client.get("/reports/settlement?year=2026&month=2")).text)
    assert (await client.get("/reports/settlement?supplier_id=999999")).status_code == 404
    assert (await client.get("/reports/settlement?year=abc&month=13&supplier_id=x")).status_code == 200


async def test_a_supplier_sees_only_its_own_settlement(client, world, books):
    expected = expected_settlement(books, 2026)
    await as_user(client, world.supplier_user)
    page = await client.get("/reports/settlement?year=2026")
    assert page.status_code == 200 and "毕节农业合作社" in page.text
    mine = sorted(k for k in expected if k[0] == world.supplier)
    assert table_rows(page.text, "settlement") == [settlement_row({"year": 2026, "month": m, **expected[(s, m)]}, None) for s, m in sorted(mine, key=lambda k: k[1])]
    assert "茂名荔枝合作社" not in page.text and 'id="supplier_id"' not in page.text
    assert link(page.text, "settlement-xlsx") == "/api/reports/settlement?year=2026&format=xlsx"
    sheet = xlsx_rows(await client.get(link(page.text, "settlement-xlsx")))
    assert {row[0] for row in sheet[1:]} == {world.supplier}
    assert (await client.get(f"/reports/settlement?supplier_id={world.supplier}")).status_code == 200
    r = await client.get(f"/reports/settlement?year=2026&supplier_id={world.other_supplier}")
    assert r.status_code == 403 and "茂名荔枝合作社" not in r.text
    assert (await client.get("/reports/settlement?supplier_id=abc")).status_code == 403
    for api in (world.buyer, world.auditor):
        await as_user(client, api)
        assert (await client.get("/reports/settlement?year=2026")).status_code == 403
        assert '<a href="/reports/settlement"' not in (await client.get("/orders")).text


def statement_rows(body: dict) -> list[str]:
    return [[f"#{o['order_id']}", yuan(o["total_fen"]), yuan(o["paid_fen"]), yuan(o["refunded_fen"]), yuan(o["paid_fen"] - o["refunded_fen"]),
             *[f"{i['number']} {yuan(i['amount_fen'])}" for i in o["invoices"]]] for o in body["orders"]]


async def test_the_buyer_reads_its_statement_and_no_other(client, world, books):
    expected = expected_statement(books, world.branch, 2026)
    await as_user(client, world.buyer)
    page = await client.get("/reports/statement?year=2026")
    assert page.status_code == 200 and '<a href="/reports/statement"' in page.text
    rows = table_rows(page.text, "statement")
    assert len(rows) == len(expected["orders"])
    for row, want in zip(rows, statement_rows(expected)):
        for said in want:
            assert said in row, (said, row)
    mar = next(r for r in rows if r.startswith(f"#{books['orders']['mar']['id']} "))
    assert "已接受" in mar and "已退回" in mar and "部分退款" in mar  # its lychee invoice rejected, tea accepted; one tea refunded
    assert footer(page.text, "statement") == " ".join(["合计", yuan(expected["paid_fen"]), yuan(expected["refunded_fen"]), yuan(expected["net_fen"]), "已开票", yuan(expected["invoiced_fen"])])
    totals = text_of(re.search(r'id="statement-totals".*?>(.*?)</section>', page.text, re.S)[1])
    assert f"净额 {yuan(expected['net_fen'])}" in totals and f"已开票 {yuan(expected['invoiced_fen'])}" in totals
    assert 'id="union_id"' not in page.text  # a buyer's is its own branch
    sheet = xlsx_rows(await client.get(link(page.text, "statement-xlsx")))
    assert link(page.text, "statement-xlsx") == "/api/reports/statement?year=2026&format=xlsx"
    assert sheet[-1][0] == "合计" and len(sheet) == len(expected["orders"]) + 2
    assert (await client.get(f"/reports/statement?union_id={world.branch}")).status_code == 200
    r = await client.get(f"/reports/statement?year=2026&union_id={world.other_branch}")
    assert r.status_code == 403 and 'id="statement"' not in r.text and "没有权限" in text_of(r.text)
    await as_user(client, world.other_buyer)
    rows = table_rows((await client.get("/reports/statement?year=2026")).text, "statement")
    assert [r.split()[0] for r in rows] == [f"#{books['orders']['other']['id']}"]
    await as_user(client, world.supplier_user)
    assert (await client.get(f"/reports/statement?union_id={world.branch}")).status_code == 403


async def test_auditors_pick_a_branch_of_their_subtree_and_admins_any(client, world, books, make_user):
    await as_user(client, world.auditor)  # over the district GZ-TH
    page = await client.get("/reports/statement?year=2026")
    assert page.status_code == 200 and "请选择要查看的基层工会和年度" in text_of(page.text)
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', re.search(r'<select id="union_id".*?</select>', page.text, re.S)[0])
    assert [int(v) for v, _ in options] == [world.branch] and "GZ-TH-001" in options[0][1]
    assert 'id="statement-xlsx"' not in page.text
    page = await client.get(f"/reports/statement?year=2026&union_id={world.branch}")
    assert len(table_rows(page.text, "statement")) == len(expected_statement(books, world.branch, 2026)["orders"])
    assert link(page.text, "statement-xlsx") == f"/api/reports/statement?year=2026&union_id={world.branch}&format=xlsx"
    assert xlsx_rows(await client.get(link(page.text, "statement-xlsx")))[-1][0] == "合计"
    assert (await client.get(f"/reports/statement?union_id={world.other_branch}")).status_code == 403
    r = await client.get(f"/reports/statement?union_id={world.district}")  # its own district: not a branch
    assert r.status_code == 400 and "请选择一个基层工会" in text_of(r.text)
    await as_admin(client)
    page = await client.get("/reports/statement")
    options = re.findall(r'<option value="(\d+)"', re.search(r'<select id="union_id".*?</select>', page.text, re.S)[0])
    assert {int(v) for v in options} == {world.branch, world.other_branch}
    page = await client.get(f"/reports/statement?year=2026&union_id={world.other_branch}")
    assert [r.split()[0] for r in table_rows(page.text, "statement")] == [f"#{books['orders']['other']['id']}"]
    assert (await client.get(f"/reports/statement?union_id={world.federation}")).status_code == 400
    assert (await client.get("/reports/statement?union_id=999999")).status_code == 404
    assert "2025 年本单位没有订单" not in text_of((await client.get(f"/reports/statement?year=2025&union_id={world.branch}")).text)
    assert "2024 年本单位没有订单" in text_of((await client.get(f"/reports/statement?year=2024&union_id={world.branch}")).text)
