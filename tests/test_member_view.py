"""Members see their own quota through a personal read-only link, over HTTP against the app:
the branch's buyer exports every member's link (CSV/XLSX, made where missing) and makes a new
one (the old answers 404); the link's JSON and page show exactly the member's figures and
allocations before payment, after it and after a partial refund; unknown links are 404 and
every address is limited; another branch's members are out of reach; the 签收表 lists each
member of an order with the QR code of their link."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from urllib.parse import urlsplit

import msgspec
import pytest
from openpyxl import load_workbook

from budgets.tables import MemberLink
from shop.member_view.links import qr_svg
from tests.conftest import assert_problem, fresh_login_window
from tests.test_web import as_user, hold_for, post_form
from tests.world import build_world

MOMENT = datetime(2026, 5, 20, 2, 0, tzinfo=timezone.utc)
TEA = "毕节高山绿茶 250克"


@pytest.fixture
async def world(app, make_user, admin):
    original = app.state.clock
    app.state.clock = lambda: MOMENT
    yield await build_world(make_user, admin)
    app.state.clock = original


def path_of(url: str) -> str:
    return urlsplit(url).path


def token_of(url: str) -> str:
    return path_of(url).rsplit("/", 1)[1]


async def links_of(api) -> dict[int, str]:
    r = await api.get("/api/members/links")
    assert r.status_code == 200, r.text
    return {item["member_id"]: item["url"] for item in r.json()["items"]}


async def view(client, url: str):
    return await client.get(f"/api/member-view/{token_of(url)}")


async def paid(world, quantity: int, members: list[int], key: str) -> dict:
    order = await hold_for(world.buyer, world.products["tea"], quantity, members, key)
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    return order


async def test_links_are_made_once_kept_hashed_and_a_new_one_ends_the_old(client, world):
    links = await links_of(world.buyer)
    assert sorted(links) == sorted(world.members)
    assert await links_of(world.buyer) == links  # the same links again, not new ones
    for url in links.values():
        assert url.startswith("http://127.0.0.1:8000/m/") and len(token_of(url)) == 43
        assert (await view(client, url)).status_code == 200
    stored = await MemberLink.select(MemberLink.nonce, MemberLink.token_hash)
    assert len(stored) == len(world.members)
    assert not any(token_of(url) in str(row) for url in links.values() for row in stored)  # no token in the database

    member = world.members[0]
    r = await world.buyer.post(f"/api/members/{member}/link")
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["member_id"] == member and fresh["member_no"] == "A0000" and fresh["url"] != links[member]
    assert_problem(await view(client, links[member]), 404, "not_found")
    assert (await view(client, fresh["url"])).json()["member"] == {"member_no": "A0000", "name": "职工A0"}
    assert (await links_of(world.buyer))[member] == fresh["url"]  # printed again: the new one
    assert (await client.get(path_of(links[member]))).status_code == 404  # the page too
    assert (await view(client, links[world.members[1]])).status_code == 200  # others keep theirs


async def test_unknown_links_are_404(client, world):
    await links_of(world.buyer)
    for token in ["A" * 43, "short", "x" * 150, "%00" * 5, "a" * 42 + "!"]:
        assert_problem(await client.get(f"/api/member-view/{token}"), 404, "not_found")
    r = await client.get("/m/" + "A" * 43)
    assert r.status_code == 404 and "这个链接无效或已更换" in r.text and r.headers["cache-control"] == "private, no-store"


async def test_a_buyer_reaches_only_the_branchs_members(client, world):
    assert_problem(await world.buyer.post(f"/api/members/{world.other_members[0]}/link"), 403, "forbidden")
    assert_problem(await world.buyer.post("/api/members/999999/link"), 404, "not_found")
    assert set(await links_of(world.other_buyer)) == set(world.other_members)
    for api in (world.auditor, world.admin, world.supplier_user):
        assert_problem(await api.post(f"/api/members/{world.members[0]}/link"), 403, "forbidden")
        assert_problem(await api.get("/api/members/links"), 403, "forbidden")
    anon = await client.post(f"/api/members/{world.members[0]}/link")
    assert anon.status_code == 401
    assert await MemberLink.count().where(MemberLink.member.is_in(world.members)) == 0  # nothing made for them


async def test_the_view_shows_exactly_the_members_quota_and_allocations(client, world):
    links = await links_of(world.buyer)
    first, second = world.members[0], world.members[1]
    r = await view(client, links[first])
    assert set(r.headers["cache-control"].split(", ")) == {"private", "no-store"}
    empty = r.json()
    assert empty == {
        "year": 2026,
        "member": {"member_no": "A0000", "name": "职工A0"},
        "branch": "GZ-TH-001工会",
        "cap_fen": 60000,
        "spent_fen": 0,
        "held_fen": 0,
        "remaining_fen": 60000,
        "items": [],
    }
    # tea is ¥100.00: 2 split between the first two (¥100.00 each), held until paid
    order = await hold_for(world.buyer, world.products["tea"], 2, [first, second], "o1")
    held = (await view(client, links[first])).json()
    assert (held["spent_fen"], held["held_fen"], held["remaining_fen"]) == (0, 10000, 50000)
    assert held["items"] == [{"date": "2026-05-20", "products": [TEA], "amount_fen": 10000, "refunded_fen": 0, "status": "pending_payment"}]
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    # an order for the second member alone, and another branch's, are not the first member's
    await paid(world, 1, [second], "o2")
    other = await hold_for(world.other_buyer, world.products["lychee"], 1, world.other_members, "o3")
    assert other["status"] == "pending_payment"
    after = (await view(client, links[first])).json()
    assert (after["spent_fen"], after["held_fen"], after["remaining_fen"]) == (10000, 0, 50000)
    assert after["items"] == [{"date": "2026-05-20", "products": [TEA], "amount_fen": 10000, "refunded_fen": 0, "status": "paid"}]
    second_view = (await view(client, links[second])).json()
    assert (second_view["spent_fen"], second_view["remaining_fen"], len(second_view["items"])) == (20000, 40000, 2)
    # one of the two teas refunded: ¥100.00 back, pro rata ¥50.00 to each
    line = order["lines"][0]["id"]
    r = await world.admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": line, "quantity": 1}]})
    assert r.status_code == 200, r.text
    refunded = (await view(client, links[first])).json()
    assert (refunded["spent_fen"], refunded["held_fen"], refunded["remaining_fen"]) == (5000, 0, 55000)
    assert refunded["items"] == [{"date": "2026-05-20", "products": [TEA], "amount_fen": 10000, "refunded_fen": 5000, "status": "partially_refunded"}]
    # the figures are the buyer's budget page's, line for line
    budget = {m["member_id"]: m for m in (await world.buyer.get("/api/branch/budget", params={"year": 2026})).json()["members"]}
    assert {k: budget[first][k] for k in ("spent_fen", "held_fen", "remaining_fen")} == {k: refunded[k] for k in ("spent_fen", "held_fen", "remaining_fen")}
    # the page says the same, in Chinese, with nothing to log in to and no navigation
    page = await client.get(path_of(links[first]))
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    for text in ("年度额度", "¥600.00", "已用", "¥50.00", "占用中", "剩余", "¥550.00", TEA, "已退 ¥50.00", "2026-05-20"):
        assert text in page.text, text
    assert "<nav" not in page.text and "登录" not in page.text and "职工A1" not in page.text


async def test_the_link_pages_are_limited_per_address(app, client, world):
    links = await links_of(world.buyer)
    settings = app.state.settings
    app.state.settings = msgspec.structs.replace(settings, member_view_rate_limit=3)
    try:
        await fresh_login_window()
        assert (await view(client, links[world.members[0]])).status_code == 200
        assert (await client.get(path_of(links[world.members[1]]))).status_code == 200
        assert_problem(await client.get("/api/member-view/" + "B" * 43), 404, "not_found")  # a guess counts too
        body = assert_problem(await view(client, links[world.members[0]]), 429, "rate_limited")
        assert body["status"] == 429
        r = await view(client, links[world.members[0]])
        assert 1 <= int(r.headers["retry-after"]) <= 60
        page = await client.get(path_of(links[world.members[0]]))
        assert page.status_code == 429 and "查询太频繁" in page.text and "retry-after" in page.headers
        # the buyer's own pages and the API are not counted with them
        assert (await world.buyer.get("/api/members/links")).status_code == 200
    finally:
        app.state.settings = settings


async def test_every_members_link_as_csv_and_xlsx(client, world):
    r = await world.buyer.get("/api/members/links", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["会员编号", "姓名", "状态", "额度查询链接"]
    assert [row[:3] for row in rows[1:]] == [[f"A{i:04d}", f"职工A{i}", "在册"] for i in range(5)]
    for row in rows[1:]:
        got = (await view(client, row[3])).json()
        assert got["member"] == {"member_no": row[0], "name": row[1]}
    r = await world.buyer.get("/api/members/links", params={"format": "xlsx"})
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == rows


async def test_the_receipt_sheet_lists_each_member_with_a_qr_code(client, world):
    order = await paid(world, 3, world.members[:3], "o1")
    unpaid = await hold_for(world.buyer, world.products["tea"], 1, world.members[3:], "o2")
    await as_user(client, world.buyer)
    r = await client.get(f"/orders/{order['id']}/receipt-sheet")
    assert r.status_code == 200, r.text
    assert "签收表" in r.text and "GZ-TH-001工会" in r.text and "@page" in r.text and "签名" in r.text
    links = await links_of(world.buyer)
    for member in world.members[:3]:
        row = r.text.split(f'id="member-{member}"', 1)[1].split("</tr>", 1)[0]
        assert "¥100.00" in row and qr_svg(links[member]) in row
    assert r.text.count("<svg") == 3
    for member in world.members[3:]:
        assert f'id="member-{member}"' not in r.text
    assert "打印签收表" in (await client.get(f"/orders/{order['id']}")).text
    assert (await client.get(f"/orders/{unpaid['id']}/receipt-sheet")).status_code == 409
    assert (await client.get("/orders/999999/receipt-sheet")).status_code == 404
    await as_user(client, world.other_buyer)
    assert (await client.get(f"/orders/{order['id']}/receipt-sheet")).status_code == 403


async def test_the_members_page_exports_and_renews_links(client, world):
    links = await links_of(world.buyer)
    await as_user(client, world.buyer)
    page = await client.get("/members")
    assert "/api/members/links?format=csv" in page.text and f'action="/members/{world.members[0]}/link"' in page.text
    assert (await client.get("/api/members/links", params={"format": "csv"})).status_code == 200  # the page's cookie reads it
    r = await post_form(client, f"/members/{world.members[0]}/link")
    assert r.status_code == 303 and r.headers["location"] == "/members?ok=link"
    assert "原链接和已打印的二维码已失效" in (await client.get(r.headers["location"])).text
    assert_problem(await view(client, links[world.members[0]]), 404, "not_found")
    assert (await view(client, (await links_of(world.buyer))[world.members[0]])).status_code == 200
    assert (await post_form(client, f"/members/{world.other_members[0]}/link")).status_code == 403


async def test_links_outlive_a_new_secret_until_printed_again(app, client, world):
    before = await links_of(world.buyer)
    settings = app.state.settings
    app.state.settings = msgspec.structs.replace(settings, secret_key="another-secret-" + "x" * 40)
    try:
        assert (await view(client, before[world.members[0]])).status_code == 200  # found by its hash, as before
        after = await links_of(world.buyer)  # printed again: the old secret's links are replaced
        assert set(after) == set(before) and not set(after.values()) & set(before.values())
        for member in world.members:
            assert_problem(await view(client, before[member]), 404, "not_found")
            assert (await view(client, after[member])).status_code == 200
        assert await links_of(world.buyer) == after
    finally:
        app.state.settings = settings
