"""The admin's and the auditor's pages over HTTP: refunds of some lines, delisting, confirming
transfers (the count goes down, the expected reference is never shown), the cap's history,
the trail, the ledger by member number or name; the exports in words; static files."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import datetime

import pytest
from openpyxl import load_workbook

from budgets import ledger, targets
from catalog.tables import Product
from shop.orders.tables import Order
from tests.test_pages_buyer import paid_order
from tests.test_web import as_user, hold_for, page_login, post_form, text_of
from tests.world import build_world


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


async def as_admin(client) -> None:
    assert (await page_login(client, "admin", "admin-password")).status_code == 303


async def test_the_admin_refunds_some_lines_then_the_rest(client, world):
    order = await paid_order(world, quantity=3, members=world.members[:3])
    line = order["lines"][0]["id"]
    await as_admin(client)
    page = await client.get(f"/orders/{order['id']}")
    assert 'id="refund"' in page.text and f'name="qty-{line}"' in page.text
    key = re.search(r'name="refund_key" value="(\w+)"', page.text)[1]
    r = await post_form(client, f"/orders/{order['id']}/refund", {"refund_key": key})
    assert r.status_code == 400 and "请填写要退款的数量" in r.text
    r = await post_form(client, f"/orders/{order['id']}/refund", {"refund_key": key, f"qty-{line}": "4"})
    assert r.status_code == 409 and "退款数量超过了该商品剩余可退的数量" in text_of(r.text)
    r = await post_form(client, f"/orders/{order['id']}/refund", {"refund_key": key, f"qty-{line}": "1"})
    assert r.status_code == 303 and r.headers["location"].endswith("?ok=refunded#refunds")
    again = await post_form(client, f"/orders/{order['id']}/refund", {"refund_key": key, f"qty-{line}": "1"})  # a double click
    assert again.status_code == 303
    row = await Order.select(Order.status, Order.refunded_fen).where(Order.id == order["id"]).first()
    assert (row["status"], row["refunded_fen"]) == ("partially_refunded", 10000)  # once
    text = text_of((await client.get(f"/orders/{order['id']}")).text)
    assert "部分退款" in text and "退款记录" in text and "已退 ¥100.00" in text
    r = await post_form(client, f"/orders/{order['id']}/refund", {"refund_key": "another", "all": "1"})
    assert r.status_code == 303
    row = await Order.select(Order.status, Order.refunded_fen).where(Order.id == order["id"]).first()
    assert (row["status"], row["refunded_fen"]) == ("refunded", 30000)
    assert 'id="refund"' not in (await client.get(f"/orders/{order['id']}")).text  # nothing left to refund
    await as_user(client, world.buyer)
    assert (await post_form(client, f"/orders/{order['id']}/refund", {"all": "1"})).status_code == 403


async def test_the_admin_delists_a_listed_product(client, world):
    tea = world.products["tea"]
    await as_admin(client)
    r = await client.get("/admin/products")
    assert "毕节高山绿茶 250克" in r.text and "赫章核桃" not in r.text  # listed ones by default
    assert "赫章核桃" in (await client.get("/admin/products", params={"status": ""})).text
    r = await post_form(client, f"/admin/products/{tea}/delist", {"reason": ""})
    assert r.status_code == 400 and "请填写下架原因" in r.text
    r = await post_form(client, f"/admin/products/{tea}/delist", {"reason": "农残检测不合格"})
    assert r.status_code == 303
    row = await Product.select(Product.status, Product.review_note).where(Product.id == tea).first()
    assert row["status"] == "delisted" and row["review_note"] == "农残检测不合格"
    r = await post_form(client, f"/admin/products/{tea}/delist", {"reason": "again"})
    assert r.status_code == 409 and "不能下架" in text_of(r.text)
    notes = (await world.supplier_user.get("/api/notifications")).json()["items"]
    assert any(n["kind"] == "review_decided" for n in notes)
    await as_user(client, world.supplier_user)
    assert "农残检测不合格" in (await client.get("/supplier/products")).text


async def test_confirming_a_transfer_counts_down_and_never_shows_the_expected_reference(client, world):
    first = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "t-1")
    await hold_for(world.buyer, world.products["tea"], 1, [world.members[1]], "t-2")
    await as_admin(client)
    assert '<span id="pending-count">2</span>' in (await client.get("/admin/orders")).text
    r = await post_form(client, f"/admin/orders/{first['id']}/confirm", {"reference": "XFBF99999999"}, htmx=True)
    assert "转账附言：与订单不一致" in text_of(r.text)
    assert first["payment"]["reference"] not in r.text  # the admin types it from the bank statement
    assert 'hx-swap-oob="true">2<' in r.text
    r = await post_form(client, f"/admin/orders/{first['id']}/confirm", {"reference": first["payment"]["reference"]}, htmx=True)
    assert "已确认收款" in r.text and '<span id="pending-count" hx-swap-oob="true">1</span>' in r.text
    assert '<span id="pending-count">1</span>' in (await client.get("/admin/orders")).text


async def test_the_cap_history_and_members_above_a_lowered_cap(client, world):
    await paid_order(world, quantity=3, members=[world.members[0]])  # 300 spent
    await as_admin(client)
    year = ledger.current_year()
    r = await post_form(client, "/admin/policy", {"year": str(year), "cap": "¥2,00"})
    assert r.status_code == 400 and "逗号只能用来分隔千位" in r.text
    r = await post_form(client, "/admin/policy", {"year": str(year), "cap": "200"})
    assert r.status_code == 303 and "affected=1" in r.headers["location"]
    text = text_of((await client.get(r.headers["location"])).text)
    assert "1 位会员" in text and "已高于新额度" in text
    assert (await post_form(client, "/admin/policy", {"year": str(year), "cap": "800"})).status_code == 303
    text = text_of((await client.get("/admin/policy")).text)
    assert "调整记录" in text
    assert f"{year} 年 ¥200.00 ¥800.00 admin" in text and f"{year} 年 ¥600.00 ¥200.00 admin" in text


async def test_the_trail_for_admins_and_auditors(client, world):
    order = await paid_order(world)
    await world.admin.post(f"/api/orders/{order['id']}/refund", json={})
    await world.admin.put(f"/api/admin/policy/{ledger.current_year()}", json={"cap_fen": 50000})
    await as_admin(client)
    text = text_of((await client.get("/audit/trail")).text)
    for said in ("确认转账到账", f"订单 #{order['id']}", "退款", "调整额度", "¥600.00 → ¥500.00", "创建账号", "基层工会采购员"):
        assert said in text, said
    assert "union" not in text and " fen" not in text
    r = await client.get("/audit/trail", params={"action": "cap_changed"})
    assert "<td>调整额度</td>" in r.text and "<td>确认转账到账</td>" not in r.text and "共 1 条" in text_of(r.text)
    await as_user(client, world.auditor)  # the district: its subtree's orders, every cap change
    r = await client.get("/audit/trail")
    assert r.status_code == 200 and "确认转账到账" in r.text and "调整额度" in r.text
    await as_user(client, world.buyer)
    assert (await client.get("/audit/trail")).status_code == 403


async def test_the_auditor_finds_a_member_in_the_ledger_by_number_or_name(client, world):
    await paid_order(world, members=[world.members[0], world.members[1]])
    await as_user(client, world.auditor)
    r = await client.get("/audit/ledger", params={"member": "a0001"})  # the number, any case
    text = text_of(r.text)
    assert "职工A1" in text and "职工A0 " not in text and "共 2 条" in text and 'value="a0001"' in r.text
    r = await client.get("/audit/ledger", params={"member": "职工A"})  # part of a name: several, to choose from
    text = text_of(r.text)
    assert "对应 5 位会员" in text and "职工A0（A0000，GZ-TH-001）" in text and "badge pending_payment" not in r.text  # no entries yet
    r = await client.get("/audit/ledger", params={"member": "职工B0"})  # another subtree's member
    assert "没有找到会员“职工B0”" in text_of(r.text)
    assert "会员 ID" not in r.text and 'name="member_id"' not in r.text


async def test_exports_name_members_and_codes_in_words(client, world):
    year = ledger.current_year()
    await targets.set_target(world.federation, year, 100000)
    order = await paid_order(world, members=world.members[:2])
    admin = world.admin
    r = await admin.get("/api/audit/ledger?format=csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["序号", "时间", "基层工会", "会员编号", "姓名", "年度", "订单号", "类型", "金额(元)", "哈希"]
    assert {row[7] for row in rows[1:]} == {"占用", "扣减"} and rows[1][3:5] == ["A0000", "职工A0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[1][1])
    sheet = load_workbook(io.BytesIO((await admin.get("/api/audit/ledger?format=xlsx")).content)).active
    assert isinstance(sheet["B2"].value, datetime) and "yy" in sheet["B2"].number_format and sheet["H2"].value == "占用"
    r = await admin.get(f"/api/reports/targets?year={year}&format=csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert all(not row[0].startswith(("\u3000", " ")) for row in rows[1:])
    levels = {row[1]: row[2] for row in rows[1:]}
    assert levels["GZ"] == "总工会" and levels["GZ-TH"] == "区级工会" and levels["GZ-TH-001"] == "基层工会"
    assert rows[0][-1] == "上级代码" and {row[1]: row[-1] for row in rows[1:]}["GZ-TH-001"] == "GZ-TH"
    r = await admin.get(f"/api/orders/{order['id']}/distribution?format=csv")
    assert r.content.decode("utf-8-sig").splitlines()[0] == "会员编号,姓名,分摊金额(元),已退(元)"
    r = await admin.get(f"/api/reports/distribution?year={year}&format=csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[1][5] == "已付款" and "分摊金额(元)" in rows[0]
    r = await admin.get("/api/audit/ledger/verify?format=csv")
    assert "会员ID" not in r.content.decode("utf-8-sig") and "会员编号" in r.content.decode("utf-8-sig")


async def test_the_audit_list_reads_naturally(client, world):
    await as_user(client, world.auditor)
    text = text_of((await client.get("/audit/members", params={"min_ratio": "0"})).text)
    assert "不限 以上" not in text and "达到额度 不限" not in text and "有额度记录的全部会员" in text
    text = text_of((await client.get("/audit/members", params={"min_ratio": "0.8"})).text)
    assert "达到额度 80% 以上的会员" in text


async def test_static_files_have_hashed_names_and_are_gzipped_and_kept(client, world):
    page = (await client.get("/login")).text
    css = re.search(r'href="(/static/shop\.[0-9a-f]{10}\.css)"', page)[1]
    js = re.search(r'src="(/static/htmx\.min\.[0-9a-f]{10}\.js)"', page)[1]
    for path in (css, js):
        r = await client.get(path, headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable" and "accept-encoding" in r.headers["vary"]
        raw = await client.get(path, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in raw.headers and gzip.decompress(gzip.compress(raw.content)) == raw.content
        assert int(r.headers["content-length"]) < len(raw.content) / 2
        assert (await client.get(path, headers={"if-none-match": r.headers["etag"]})).status_code == 304
    assert (await client.get("/static/shop.css")).headers["cache-control"] == "public, max-age=3600"
    assert (await client.get("/static/shop.0000000000.css")).status_code == 404
    r = await client.get("/login", headers={"accept-encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"  # pages too
    r = await client.get("/api/regions", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers  # the API as it was
