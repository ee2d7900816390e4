"""The pages a buyer (and whoever meets a buyer's order) works through, over HTTP against the
app: unknown addresses and lost sessions said in Chinese, prices read exactly, amounts per
member, the ticked members kept while browsing, addresses and the invoice profile, the order
page after payment (shipments, receipt, after-sales), notifications, member import as Excel
saves it."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook, load_workbook

from budgets.tables import Member
from catalog.tables import Product
from shop.orders.tables import Allocation, Order
from shop.web.ui import read_yuan
from tests.test_web import HTMX, as_user, hold_for, page_login, post_form, text_of, token
from tests.world import build_world


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


async def paid_order(world, quantity: int = 2, members: list[int] | None = None, key: str = "paid-1") -> dict:
    order = await hold_for(world.buyer, world.products["tea"], quantity, members or world.members[:2], key)
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200, r.text
    return r.json()


# --- errors as pages -------------------------------------------------------------------------


async def test_unknown_addresses_are_chinese_pages_and_the_api_stays_json(client, world):
    for path in ["/no-such-page", "/products/abc", "/orders/abc/x"]:
        r = await client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
        assert "找不到该页面或记录" in r.text and '<html lang="zh-CN">' in r.text
    r = await client.post("/no-such-page")
    assert r.status_code in (404, 405) and "找不到" in r.text
    r = await client.get("/no-such-page", headers=HTMX)  # an HTMX click: said at the top of the page
    assert r.headers["HX-Retarget"] == "#flash" and "找不到" in r.text
    r = await client.get("/api/nothing")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    await as_user(client, world.buyer)
    r = await client.get("/orders/999999")
    assert r.status_code == 404 and "找不到" in r.text


async def test_a_lost_session_says_so_and_leads_back(client, world):
    await as_user(client, world.buyer)
    r = await post_form(client, "/logout")  # the token ends; a copy of the cookie stays in the browser
    client.cookies.set("shop_token", "expired.token.here")
    r = await client.get("/orders", params={"status": "paid"})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Forders%3Fstatus%3Dpaid&expired=1"
    r = await client.get(r.headers["location"])
    assert "登录已过期" in r.text and "回到刚才的页面" in r.text and 'value="/orders?status=paid"' in r.text
    # an HTMX click on a page: back to that page afterwards
    r = await client.post("/shop/basket", data={"product_id": "1"}, headers={**HTMX, "HX-Current-URL": "http://shop.test/shop?page=2", "x-csrftoken": await token(client)})
    assert r.headers["HX-Redirect"] == "/login?next=%2Fshop%3Fpage%3D2&expired=1"
    # logging in goes back there
    r = await page_login(client, world.buyer.user["username"], next_="/shop?page=2")
    assert r.headers["location"] == "/shop?page=2"
    # never logged in: no word of expiry
    client.cookies.clear()
    r = await client.get("/orders")
    assert r.headers["location"] == "/login?next=%2Forders"


# --- prices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, fen",
    [("45", 4500), ("45.5元", 4550), ("¥1,234.50", 123450), ("￥４５．５", 4550), ("12,345.6", 1234560), (" ¥ 88 ", 8800),
     ("¥45,00", None), ("45,00", None), ("1,23", None), ("45.555", None), ("-5", None), ("1 234", None), ("", None)],
)
def test_prices_are_understood_exactly_or_refused(typed, fen):
    value, problem = read_yuan(typed)
    assert value == fen
    assert (problem is None) == (fen is not None)


async def test_the_product_form_refuses_a_decimal_comma_and_confirms_a_big_change(client, world):
    await as_user(client, world.supplier_user)
    form = {"title": "毕节红茶", "region": "bijie", "category": "tea", "unit": "盒", "stock": "10", "description": ""}
    r = await post_form(client, "/supplier/products", {**form, "price": "¥45,00"})
    assert r.status_code == 400 and "逗号只能用来分隔千位" in r.text
    assert not await Product.exists().where(Product.title == "毕节红茶")
    r = await post_form(client, "/supplier/products", {**form, "price": "45.5元"})
    assert r.status_code == 303
    assert (await Product.select(Product.price_fen).where(Product.title == "毕节红茶").first())["price_fen"] == 4550
    tea = world.products["tea"]  # listed at ¥100.00
    edit = {"title": "毕节高山绿茶 250克", "region": "bijie", "category": "tea", "unit": "盒", "stock": "100", "stock_shown": "100", "description": "毕节高山绿茶 250克，产地直发。"}
    r = await post_form(client, f"/supplier/products/{tea}", {**edit, "price": "45"})  # -55%: asked first
    assert r.status_code == 200 and "请确认价格：¥100.00 → ¥45.00（-55%）" in text_of(r.text)
    assert 'name="confirm_price" value="4500"' in r.text
    assert (await Product.select(Product.price_fen).where(Product.id == tea).first())["price_fen"] == 10000
    r = await post_form(client, f"/supplier/products/{tea}", {**edit, "price": "45", "confirm_price": "4500"})
    assert r.status_code == 303
    assert (await Product.select(Product.price_fen).where(Product.id == tea).first())["price_fen"] == 4500
    r = await post_form(client, f"/supplier/products/{tea}", {**edit, "price": "60"})  # +33%: saved at once
    assert r.status_code == 303
    assert (await Product.select(Product.price_fen).where(Product.id == tea).first())["price_fen"] == 6000


# --- the order form ----------------------------------------------------------------------------


async def test_amounts_per_member_are_previewed_and_ordered(client, world):
    await as_user(client, world.buyer)
    tea, (m0, m1, m2) = world.products["tea"], world.members[:3]
    await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "add"}, htmx=True)  # ¥100.00
    custom = {"split": "custom", "member": [str(m0), str(m1)], f"amount-{m0}": "70", f"amount-{m1}": "20元"}
    r = await post_form(client, "/shop/preview", custom, htmx=True)
    text = text_of(r.text)
    assert "2 位会员已分摊 ¥90.00 ， 还差 ¥10.00" in text and "职工A0 ¥70.00 ¥600.00 ¥530.00" in text
    r = await post_form(client, "/shop/order", {**custom, "idempotency_key": "custom-1"})
    assert r.status_code == 400 and "分摊金额合计与订单金额不一致" in text_of(r.text) and "还差 ¥10.00" in text_of(r.text)
    r = await post_form(client, "/shop/order", {**custom, f"amount-{m1}": "", "idempotency_key": "custom-1"})
    assert r.status_code == 400 and "职工A1：请填写金额" in text_of(r.text)
    assert await Order.count() == 0
    custom[f"amount-{m1}"] = "¥30.00"
    r = await post_form(client, "/shop/order", {**custom, "idempotency_key": "custom-1"})
    assert r.status_code == 303, text_of(r.text)[-600:]
    shares = {a["member"]: a["amount_fen"] for a in await Allocation.select()}
    assert shares == {m0: 7000, m1: 3000}
    assert "shop_members" not in client.cookies  # the next order starts afresh
    assert m2  # untouched


async def test_ticked_members_and_their_amounts_survive_paging_and_searching(client, world):
    await as_user(client, world.buyer)
    m = world.members
    await post_form(client, "/shop/preview", {"split": "even", "member": [str(m[1]), str(m[2]), str(m[3])]}, htmx=True)
    for params in ({"page": "2"}, {"q": "苦荞"}, {"all": "1", "category": "fruit"}):
        page = (await client.get("/shop", params=params)).text
        ticked = set(re.findall(r'name="member" value="(\d+)" checked', page))
        assert ticked == {str(m[1]), str(m[2]), str(m[3])}, params
    await post_form(client, "/shop/preview", {"split": "custom", "member": [str(m[0])], f"amount-{m[0]}": "12.5"}, htmx=True)
    page = (await client.get("/shop", params={"page": "3"})).text
    assert 'value="custom" checked' in page and f'id="amount-{m[0]}" data-member="{m[0]}" value="12.50"' in page


async def test_addresses_the_invoice_profile_and_the_address_an_order_keeps(client, world):
    await as_user(client, world.buyer)
    r = await client.get("/shop")
    assert "本单位还没有收货地址" in r.text
    r = await post_form(client, "/addresses", {"name": "张三", "phone": "12345", "address": "广州市天河区体育东路 1 号"})
    assert r.status_code == 400 and "不是有效的电话号码" in text_of(r.text)
    r = await post_form(client, "/addresses", {"name": "", "phone": "13800138000", "address": ""})
    assert r.status_code == 400 and "请填写收货人" in r.text and "请填写地址" in r.text
    for name, phone, address in [("张三", "13800138000", "广州市天河区体育东路 1 号"), ("李四", "020-12345678", "广州市越秀区 2 号")]:
        assert (await post_form(client, "/addresses", {"name": name, "phone": phone, "address": address})).status_code == 303
    listed = (await world.buyer.get("/api/branch/addresses")).json()["items"]
    first, second = listed[0]["id"], listed[1]["id"]
    assert listed[0]["is_default"] and listed[0]["name"] == "张三"
    assert (await post_form(client, f"/addresses/{second}/default")).status_code == 303
    r = await post_form(client, f"/addresses/{first}", {"name": "张三丰", "phone": "13800138000", "address": "广州市天河区体育东路 9 号"})
    assert r.status_code == 303
    page = (await client.get("/addresses")).text
    assert "张三丰" in page and "体育东路 9 号" in page
    # the order form offers them, the default chosen; the order keeps a copy of the one chosen
    shop = (await client.get("/shop")).text
    assert f'<option value="{second}" selected>' in shop
    await post_form(client, "/shop/basket", {"product_id": str(world.products["tea"]), "op": "add"}, htmx=True)
    r = await post_form(client, "/shop/order", {"split": "even", "member": [str(world.members[0])], "address_id": str(first), "idempotency_key": "addr-1"})
    assert r.status_code == 303
    order = await Order.select().first()
    assert (order["delivery_name"], order["delivery_address"]) == ("张三丰", "广州市天河区体育东路 9 号")
    assert (await post_form(client, f"/addresses/{first}/delete")).status_code == 303
    assert "张三丰" in text_of((await client.get(f"/orders/{order['id']}")).text)  # the order's copy stays
    # the invoice profile
    r = await post_form(client, "/invoice-profile", {"title": "广州市天河区某某基层工会", "tax_no": "123"})
    assert r.status_code == 400 and "纳税人识别号应为 15 到 20 位" in r.text
    r = await post_form(client, "/invoice-profile", {"title": "广州市天河区某某基层工会", "tax_no": "91440101mA59abcd1x"})
    assert r.status_code == 303
    assert (await world.buyer.get("/api/branch/invoice-profile")).json() == {"title": "广州市天河区某某基层工会", "tax_no": "91440101MA59ABCD1X"}
    # another branch's address: not this buyer's to change
    other = (await world.other_buyer.post("/api/branch/addresses", json={"name": "王五", "phone": "13900139000", "address": "茂名"})).json()
    assert (await post_form(client, f"/addresses/{other['id']}/delete")).status_code == 403


# --- after payment: shipments, receipt, after-sales, notifications --------------------------------


async def test_after_payment_the_supplier_ships_the_buyer_receives_and_asks_for_some_back(client, world):
    order = await paid_order(world, quantity=3)
    line = order["lines"][0]["id"]
    # the supplier hears of it (the bell) and ships from its page
    await as_user(client, world.supplier_user)
    page = await client.get("/supplier/shipments")
    assert 'id="unread-count">1<' in page.text and "待发货" in page.text and "GZ-TH-001工会" in page.text
    shipment = order["shipments"][0]["id"]
    r = await post_form(client, f"/supplier/shipments/{shipment}/ship", {"carrier": "顺丰速运", "tracking_no": "号码"})
    assert r.status_code == 400 and "运单号应为 4 到 40 位" in r.text
    r = await post_form(client, f"/supplier/shipments/{shipment}/ship", {"carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    assert r.status_code == 303
    r = await post_form(client, f"/supplier/shipments/{shipment}/ship", {"carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    assert r.status_code == 409 and "包裹当前为“已发货”，不能发货" in text_of(r.text)
    # the buyer sees it on the order, receives it, and asks for one box back
    await as_user(client, world.buyer)
    text = text_of((await client.get(f"/orders/{order['id']}")).text)
    assert "已发货" in text and "顺丰速运 SF1234567890" in text and "确认收货" in text
    assert (await post_form(client, f"/shipments/{shipment}/receive")).status_code == 303
    r = await post_form(client, f"/orders/{order['id']}/after-sales", {f"qty-{line}": "5", "reason": "破损"})
    assert r.status_code == 409 and "申请数量超过了可申请的数量" in text_of(r.text)
    r = await post_form(client, f"/orders/{order['id']}/after-sales", {f"qty-{line}": "1", "reason": ""})
    assert r.status_code == 400 and "请写明原因" in text_of(r.text)
    r = await post_form(client, f"/orders/{order['id']}/after-sales", {f"qty-{line}": "1", "reason": "到货破损 1 盒"})
    assert r.status_code == 303
    r = await post_form(client, f"/orders/{order['id']}/after-sales", {f"qty-{line}": "1", "reason": "口味不对"})
    assert r.status_code == 303
    # the supplier accepts the first (a refund of one box) and rejects the second with a reason
    await as_user(client, world.supplier_user)
    sales = (await world.supplier_user.get("/api/after-sales?status=open")).json()["items"]
    first, second = sorted(s["id"] for s in sales)
    r = await client.get("/after-sales", params={"status": "open"})
    assert "到货破损 1 盒" in r.text and "同意并退款" in r.text
    assert (await post_form(client, f"/after-sales/{first}/accept")).status_code == 303
    r = await post_form(client, f"/after-sales/{second}/reject", {"reason": ""})
    assert r.status_code == 400 and "请填写驳回原因" in r.text
    assert (await post_form(client, f"/after-sales/{second}/reject", {"reason": "不属于质量问题"})).status_code == 303
    r = await post_form(client, f"/after-sales/{second}/accept")
    assert r.status_code == 409 and "售后申请当前为“已驳回”，不能同意" in text_of(r.text)
    # the buyer's order page tells the whole story in words
    await as_user(client, world.buyer)
    text = text_of((await client.get(f"/orders/{order['id']}")).text)
    assert "部分退款" in text and "驳回原因：不属于质量问题" in text
    for said in ("发货", "包裹 #", "确认收货", "申请售后", "售后 #", "售后同意", "售后驳回", "第 1 笔退款 ¥100.00（待退（转账））"):
        assert said in text, said
    assert "fen" not in text and "after-sale" not in text
    # the buyer's bell: shipped, and two decisions
    assert 'id="unread-count">3<' in (await client.get("/orders")).text


async def test_notifications_open_read_and_all_read(client, world):
    await paid_order(world)
    await paid_order(world, key="paid-2")
    await as_user(client, world.supplier_user)
    r = await client.get("/notifications")
    assert r.status_code == 200 and "2 条未读" in text_of(r.text)
    ids = [n["id"] for n in (await world.supplier_user.get("/api/notifications")).json()["items"]]
    r = await post_form(client, f"/notifications/{ids[0]}/open", {"next": "/supplier/shipments?status=awaiting_shipment"})
    assert r.status_code == 303 and r.headers["location"] == "/supplier/shipments?status=awaiting_shipment"
    assert "1 条未读" in text_of((await client.get("/notifications")).text)
    assert (await post_form(client, f"/notifications/{ids[0]}/open", {"next": "//evil.example"})).headers["location"] == "/notifications"
    assert (await post_form(client, "/notifications/read")).status_code == 303
    page = (await client.get("/notifications")).text
    assert "没有未读通知" in page and 'id="unread-count"' not in page
    other = (await world.buyer.get("/api/notifications")).json()
    assert (await post_form(client, "/notifications/999999/open")).status_code == 404
    assert other["unread"] == 0


# --- members as Excel saves them ---------------------------------------------------------------


def workbook(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_members_import_from_excel_gbk_and_chinese_headers_with_a_template(client, world):
    await as_user(client, world.buyer)

    async def upload(name: str, data: bytes):
        return await client.post("/members/import", data={"_csrf_token": await token(client)}, files={"file": (name, data, "application/octet-stream")})

    r = await upload("gbk.csv", "会员编号,姓名\r\nG-1,张三\r\nG-2,李四\r\n".encode("gbk"))
    assert r.status_code == 200 and "新增 2 人" in r.text
    r = await upload("m.xlsx", workbook([["会员编号", "姓名"], [1001, "王五"], ["0012", "赵六"], [None, None], ["G-1", "张三丰"]]))
    assert r.status_code == 200 and "新增 2 人，更新 1 人" in r.text
    names = {m["member_no"]: m["name"] for m in await Member.select(Member.member_no, Member.name).where(Member.union == world.branch)}
    assert names["1001"] == "王五" and names["0012"] == "赵六" and names["G-1"] == "张三丰"
    r = await upload("bad.xlsx", workbook([["会员编号", "姓名"], ["bad no", "甲"], ["X-1"]]))
    assert r.status_code == 400
    text = text_of(r.text)
    assert "全部未导入" in text and "第 2 行" in text and "第 3 行" in text and "应为 2 列（会员编号、姓名）" in text
    r = await upload("bad.csv", "工号,姓名\nA1,张三\n".encode("gbk"))
    assert r.status_code == 400 and "表头必须是“会员编号,姓名”" in text_of(r.text)
    r = await upload("broken.xlsx", b"PK\x03\x04 not really a workbook")
    assert r.status_code == 400 and "无法读取这个 Excel 文件" in text_of(r.text)
    page = (await client.get("/members")).text
    assert "/members/template.xlsx" in page and "/members/template.csv" in page
    r = await client.get("/members/template.csv")
    assert r.status_code == 200 and r.content == "\ufeff会员编号,姓名\r\n".encode() and "attachment" in r.headers["content-disposition"]
    r = await client.get("/members/template.xlsx")
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in sheet[1]] == ["会员编号", "姓名"] and sheet["A2"].number_format == "@"
    # the template, filled in, imports
    filled = load_workbook(io.BytesIO(r.content))
    filled.active.append(["T-1", "孙七"])
    out = io.BytesIO()
    filled.save(out)
    assert "新增 1 人" in (await upload("filled.xlsx", out.getvalue())).text
