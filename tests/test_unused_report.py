"""The year-end push over HTTP: `GET /api/reports/unused` against figures worked out by hand
(a member who used it all, one with a hold, one with a partial refund, an inactive one),
rolled up the tree and scoped like every report; its CSV and XLSX; the admin's page; and the
buyer's banner from 1 December (Shanghai), not on 30 November."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook

from common import sql
from tests.conftest import assert_problem
from tests.test_web import as_user, hold_for, page_login, text_of
from tests.world import add_members, add_union, build_world

MAY = datetime(2026, 5, 20, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
async def world(app, make_user, admin):
    """GZ > GZ-TH > {GZ-TH-001 (A0000..A0004), GZ-TH-002 (E0000, E0001)}; GZ > GZ-YX >
    GZ-YX-001 (C0000, and C0001 inactive); MM > MM-001 (B0000, B0001). In GZ-TH-001: A0000
    used all ¥600 (6 teas), A0001 holds ¥100 (unpaid), A0002 paid ¥200 of which ¥100 came
    back; A0003 and A0004 bought nothing."""
    original = app.state.clock
    app.state.clock = lambda: MAY
    w = await build_world(make_user, admin)
    w.b2 = await add_union("GZ-TH-002", "branch", w.district)
    await add_members(w.b2, "E", 2)
    w.yx = await add_union("GZ-YX", "district", w.federation)
    w.b3 = await add_union("GZ-YX-001", "branch", w.yx)
    await add_members(w.b3, "C", 1)
    await add_members(w.b3, "X", 1, active=False)
    tea = w.products["tea"]
    for members, quantity, key in [([w.members[0]], 6, "all"), ([w.members[2]], 2, "two")]:
        order = await hold_for(w.buyer, tea, quantity, members, key)
        r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
        assert r.status_code == 200, r.text
        if key == "two":
            r = await admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]})
            assert r.status_code == 200, r.text
    await hold_for(w.buyer, tea, 1, [w.members[1]], "held")
    yield w
    app.state.clock = original


def said(html: str) -> str:
    """The page's text without any spaces (figures in <b> stand apart in the text)."""
    return text_of(html).replace(" ", "")


def figures(node) -> tuple:
    return (node["code"], node["members_with_quota"], node["remaining_fen"], [figures(c) for c in node["children"]])


EXPECTED_GZ = (
    "GZ", 7, 400000, [
        ("GZ-TH", 6, 340000, [("GZ-TH-001", 4, 220000, []), ("GZ-TH-002", 2, 120000, [])]),
        ("GZ-YX", 1, 60000, [("GZ-YX-001", 1, 60000, [])]),
    ],
)
EXPECTED_MM = ("MM", 2, 120000, [("MM-001", 2, 120000, [])])


async def test_the_figures_rolled_up_the_tree(world):
    r = await world.admin.get("/api/reports/unused", params={"year": 2026})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["year"], body["cap_fen"], body["members_with_quota"], body["remaining_fen"]) == ("全部", 2026, 60000, 9, 520000)
    assert [figures(c) for c in body["children"]] == [EXPECTED_GZ, EXPECTED_MM]
    branch = body["children"][0]["children"][0]["children"][0]
    assert branch["members"] == [
        {"member_no": "A0001", "name": "职工A1", "remaining_fen": 50000},
        {"member_no": "A0002", "name": "职工A2", "remaining_fen": 50000},
        {"member_no": "A0003", "name": "职工A3", "remaining_fen": 60000},
        {"member_no": "A0004", "name": "职工A4", "remaining_fen": 60000},
    ]
    yx = body["children"][0]["children"][1]
    assert "members" not in yx and yx["children"][0]["members"] == [{"member_no": "C0000", "name": "职工C0", "remaining_fen": 60000}]
    # the branch's budget says the same of each member
    budget = (await world.buyer.get("/api/branch/budget", params={"year": 2026})).json()["members"]
    assert [(m["member_no"], m["remaining_fen"]) for m in budget if m["remaining_fen"]] == [(m["member_no"], m["remaining_fen"]) for m in branch["members"]]
    # another year: everyone's whole quota, under that year's cap
    r = await world.admin.put("/api/admin/policy/2027", json={"cap_fen": 50000})
    assert r.status_code == 200
    other = (await world.admin.get("/api/reports/unused", params={"year": 2027, "union_id": world.federation})).json()
    assert (other["code"], other["members_with_quota"], other["remaining_fen"], other["cap_fen"]) == ("GZ", 8, 400000, 50000)


async def test_scoped_like_every_report(world):
    auditor, buyer = world.auditor, world.buyer  # the auditor is over GZ-TH
    mine = (await auditor.get("/api/reports/unused", params={"year": 2026})).json()
    assert figures(mine) == EXPECTED_GZ[3][0]
    one = (await auditor.get("/api/reports/unused", params={"year": 2026, "union_id": world.b2})).json()
    assert figures(one) == ("GZ-TH-002", 2, 120000, [])
    for outside in (world.federation, world.b3, world.other_branch):
        assert_problem(await auditor.get("/api/reports/unused", params={"union_id": outside}), 403, "forbidden")
        assert_problem(await auditor.get("/api/reports/unused", params={"union_id": outside, "format": "csv"}), 403, "forbidden")
    own = (await buyer.get("/api/reports/unused", params={"year": 2026})).json()
    assert figures(own) == ("GZ-TH-001", 4, 220000, [])
    assert_problem(await buyer.get("/api/reports/unused", params={"union_id": world.b2}), 403, "forbidden")
    assert_problem(await world.supplier_user.get("/api/reports/unused"), 403, "forbidden")
    assert_problem(await world.admin.get("/api/reports/unused", params={"union_id": 999999}), 404, "not_found")
    body = (await world.admin.get("/api/reports/unused", params={"year": 2026, "union_id": world.other_branch})).json()
    assert figures(body) == EXPECTED_MM[3][0]


async def test_csv_and_xlsx_list_the_members(world, monkeypatch):
    monkeypatch.setattr(sql, "BATCH", 2)  # two members a query: the export spans batches
    expected = [
        ["GZ-TH-001", "GZ-TH-001工会", "A0001", "职工A1", "500.00"],
        ["GZ-TH-001", "GZ-TH-001工会", "A0002", "职工A2", "500.00"],
        ["GZ-TH-001", "GZ-TH-001工会", "A0003", "职工A3", "600.00"],
        ["GZ-TH-001", "GZ-TH-001工会", "A0004", "职工A4", "600.00"],
        ["GZ-TH-002", "GZ-TH-002工会", "E0000", "职工E0", "600.00"],
        ["GZ-TH-002", "GZ-TH-002工会", "E0001", "职工E1", "600.00"],
        ["GZ-YX-001", "GZ-YX-001工会", "C0000", "职工C0", "600.00"],
        ["MM-001", "MM-001工会", "B0000", "职工B0", "600.00"],
        ["MM-001", "MM-001工会", "B0001", "职工B1", "600.00"],
    ]
    r = await world.admin.get("/api/reports/unused", params={"year": 2026, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows == [["基层工会", "基层工会名称", "会员编号", "姓名", "剩余额度(元)"], *expected]
    r = await world.auditor.get("/api/reports/unused", params={"year": 2026, "format": "xlsx"})
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    got = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert got[0] == ["基层工会", "基层工会名称", "会员编号", "姓名", "剩余额度(元)"]
    assert [row[:4] + [f"{row[4]:.2f}"] for row in got[1:]] == expected[:6]  # GZ-TH's members only


async def test_the_admins_page_per_branch(client, world):
    assert (await page_login(client, "admin", "admin-password")).status_code == 303
    r = await client.get("/reports/unused", params={"year": 2026})
    assert r.status_code == 200, r.text
    assert 'href="/reports/unused"' in r.text and "/api/reports/unused?year=2026&amp;format=csv" in r.text
    text = text_of(r.text)
    for row in ["GZ-TH-001工会 GZ-TH-001 基层工会 4 ¥2,200.00", "GZ-TH-002工会 GZ-TH-002 基层工会 2 ¥1,200.00", "GZ工会 GZ 总工会 7 ¥4,000.00"]:
        assert row in text, row
    await as_user(client, world.auditor)
    r = await client.get("/reports/unused", params={"year": 2026})
    assert "GZ-TH工会 GZ-TH 区级工会 6 ¥3,400.00" in text_of(r.text) and "MM-001" not in r.text
    assert (await client.get("/reports/unused", params={"union_id": world.other_branch})).status_code == 403


async def test_the_buyers_banner_from_the_first_of_december(app, client, world):
    await as_user(client, world.buyer)
    banner = "年末提醒：还有4位会员有剩余额度，共¥2,200.00，12月31日前用完。"
    app.state.clock = lambda: datetime(2026, 11, 30, 15, 59, 59, tzinfo=timezone.utc)  # 30 Nov 23:59:59 in Shanghai
    for page in ("/orders", "/members", "/shop"):
        r = await client.get(page)
        assert r.status_code == 200 and 'id="year-end"' not in r.text, page
    app.state.clock = lambda: datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)  # 1 Dec 00:00 in Shanghai
    for page in ("/orders", "/members", "/shop", "/budget"):
        r = await client.get(page)
        assert banner in said(r.text) and 'href="/budget"' in r.text, page
    app.state.clock = lambda: datetime(2026, 12, 31, 15, 0, tzinfo=timezone.utc)
    assert banner in said((await client.get("/orders")).text)
    # another branch's buyer sees its own; auditors and admins see the report, not the banner
    await as_user(client, world.other_buyer)
    assert "还有2位会员有剩余额度，共¥1,200.00" in said((await client.get("/orders")).text)
    assert (await page_login(client, "admin", "admin-password")).status_code == 303
    assert 'id="year-end"' not in (await client.get("/orders")).text
