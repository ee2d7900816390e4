"""The web pages (zh-CN) through the in-process client: login by cookie, redirects to the
login page, each role's pages with their figures, role checks, the order form (the same
service as the API), refusals shown in Chinese that change nothing, and CSRF."""

from __future__ import annotations

import re
from html import unescape

import msgspec
import pytest

from budgets import ledger, policy, targets
from budgets.tables import LedgerEntry, Member, MemberBudget
from catalog.tables import Product
from shop.orders.tables import Allocation, Order
from tests.conftest import assert_problem, fresh_login_window
from tests.stripe_stub import API_KEY, WEBHOOK_SECRET, StripeStub
from tests.world import build_world

PASSWORD = "password-123"
HTMX = {"HX-Request": "true"}


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


async def token(client) -> str:
    """The CSRF token (cookie `csrftoken`), fetched with a GET when there is none yet."""
    if "csrftoken" not in client.cookies:
        r = await client.get("/login")
        assert r.status_code == 200
    return client.cookies["csrftoken"]


async def page_login(client, username: str, password: str = PASSWORD, next_: str = ""):
    client.cookies.clear()
    data = {"username": username, "password": password, "_csrf_token": await token(client)}
    if next_:
        data["next"] = next_
    return await client.post("/login", data=data)


async def as_user(client, api) -> None:
    r = await page_login(client, api.user["username"])
    assert r.status_code == 303, r.text


async def post_form(client, url: str, data: dict | None = None, htmx: bool = False, **kw):
    body = {"_csrf_token": await token(client), **(data or {})}
    return await client.post(url, data=body, headers=HTMX if htmx else None, **kw)


async def hold_for(api, product_id: int, quantity: int, members: list[int], key: str):
    r = await api.post("/api/orders", json={"lines": [{"product_id": product_id, "quantity": quantity}], "members": members}, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return r.json()


def text_of(html: str) -> str:
    """The page's text without tags, spaces collapsed (to find figures next to names)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def snapshot():
    return (
        await Order.count(),
        await Allocation.count(),
        await LedgerEntry.count(),
        [tuple(r.values()) for r in await MemberBudget.select(MemberBudget.member, MemberBudget.held_fen, MemberBudget.spent_fen).order_by(MemberBudget.id)],
        [tuple(r.values()) for r in await Product.select(Product.id, Product.stock).order_by(Product.id)],
    )


# --- login -----------------------------------------------------------------------------------


async def test_login_sets_the_cookie_and_redirects_by_role(client, world):
    r = await client.get("/login")
    assert r.status_code == 200
    assert "登录消费帮扶商城" in r.text and 'name="_csrf_token"' in r.text
    r = await page_login(client, world.buyer.user["username"])
    assert r.status_code == 303 and r.headers["location"] == "/shop"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("shop_token="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    r = await client.get("/shop")
    assert r.status_code == 200 and "采购下单" in r.text
    assert world.buyer.user["username"] in r.text and "基层工会采购员" in r.text
    # "/" sends each role home
    assert (await client.get("/")).headers["location"] == "/shop"
    for api, home in [(world.supplier_user, "/supplier/products"), (world.auditor, "/reports/targets")]:
        r = await page_login(client, api.user["username"])
        assert r.headers["location"] == home
    r = await page_login(client, "admin", "admin-password")
    assert r.headers["location"] == "/admin/reviews"


async def test_login_refusals_are_in_chinese_and_next_stays_on_site(client, world):
    r = await page_login(client, world.buyer.user["username"], "wrong-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    assert "shop_token" not in client.cookies
    r = await page_login(client, world.buyer.user["username"], next_="/orders")
    assert r.headers["location"] == "/orders"
    r = await page_login(client, world.buyer.user["username"], next_="//evil.example/x")
    assert r.headers["location"] == "/shop"


async def test_login_page_shares_the_api_rate_limit(client, app, world, monkeypatch):
    from common.clock import utcnow
    from shop.auth.ratelimit import attempt_key, count_attempt

    monkeypatch.setattr(app.state, "settings", msgspec.structs.replace(app.state.settings, login_rate_limit=3))
    username = world.buyer.user["username"]
    await fresh_login_window()
    for _ in range(3):
        await count_attempt(attempt_key("127.0.0.1", username), utcnow())
    r = await page_login(client, username)
    assert r.status_code == 429 and "次数过多" in r.text
    r = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert_problem(r, 429, "rate_limited")


async def test_logout_clears_the_cookie(client, world):
    await as_user(client, world.buyer)
    r = await post_form(client, "/logout")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert "shop_token" not in client.cookies
    assert (await client.get("/shop")).status_code == 303


async def test_pages_without_login_redirect_to_login_and_the_api_still_answers_401(client, world):
    for path in ["/shop", "/orders", "/admin/reviews", "/reports/targets", "/supplier/products"]:
        r = await client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=" + path.replace("/", "%2F")), r.headers["location"]
    assert (await client.get("/")).headers["location"] == "/login"
    r = await client.get("/orders", headers=HTMX)
    assert r.headers["HX-Redirect"].startswith("/login")
    client.cookies.set("shop_token", "not-a-jwt")
    assert (await client.get("/orders")).status_code == 303
    assert_problem(await client.get("/api/me"), 401, "unauthenticated")


async def test_a_buyer_gets_a_403_page_on_other_roles_pages(client, world):
    await as_user(client, world.buyer)
    for path in ["/admin/reviews", "/admin/orders", "/admin/policy", "/reports/targets", "/audit/ledger", "/supplier/products"]:
        r = await client.get(path)
        assert r.status_code == 403, path
        assert r.headers["content-type"].startswith("text/html")
        assert "没有权限访问此页面" in r.text
    await as_user(client, world.supplier_user)
    assert (await client.get("/shop")).status_code == 403
    assert (await client.get("/orders")).status_code == 403
    await as_user(client, world.auditor)
    assert (await client.get("/admin/targets")).status_code == 403
    r = await post_form(client, "/admin/policy", {"year": "2026", "cap": "1"})
    assert r.status_code == 403


# --- the public catalog ----------------------------------------------------------------------


async def test_public_catalog_with_filters_and_prices_in_yuan(client, world):
    r = await client.get("/products")
    assert r.status_code == 200
    assert "毕节高山绿茶 250克" in r.text and "¥100.00" in r.text
    assert "¥25.01" in r.text  # 2501 fen
    assert "赫章核桃" not in r.text  # a draft
    r = await client.get("/products", params={"category": "fruit"})
    assert "茂名白糖罂荔枝" in r.text and "毕节高山绿茶" not in r.text
    r = await client.get("/products", params={"paired_with": "MM"})
    assert "茂名白糖罂荔枝" in r.text and "威宁苦荞米" not in r.text
    r = await client.get("/products", params={"region": "bijie", "q": "苦荞"})
    assert "威宁苦荞米" in r.text and "毕节高山绿茶" not in r.text
    r = await client.get("/products", params={"category": "nonsense", "page": "x"})
    assert r.status_code == 200
    r = await client.get(f"/products/{world.products['tea']}")
    assert r.status_code == 200 and "¥100.00" in r.text and "毕节" in r.text
    r = await client.get(f"/products/{world.products['draft']}")
    assert r.status_code == 404 and "找不到" in r.text


# --- buyer -----------------------------------------------------------------------------------------


async def test_shop_shows_each_members_remaining_quota(client, world):
    await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "held-1")  # 100 yuan held
    await as_user(client, world.buyer)
    r = await client.get("/shop")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "职工A0 A0000 剩余 ¥500.00" in text
    assert "职工A1 A0001 剩余 ¥600.00" in text
    assert "毕节高山绿茶 250克" in text and "茂名白糖罂荔枝" not in text  # paired regions only
    assert "茂名白糖罂荔枝" in (await client.get("/shop", params={"all": "1"})).text


async def test_basket_and_live_split_preview(client, world):
    await as_user(client, world.buyer)
    tea = world.products["tea"]
    r = await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "add"}, htmx=True)
    assert r.status_code == 200 and "basket-added" in r.headers["HX-Trigger"]  # a toast says so
    assert "¥100.00" in r.text and f'value="{tea}:1"' in r.text
    assert client.cookies["shop_basket"] == f"{tea}-1"
    r = await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "inc"}, htmx=True)
    assert "¥200.00" in r.text and client.cookies["shop_basket"] == f"{tea}-2"
    assert "HX-Trigger" not in r.headers  # only adding a product says so
    r = await post_form(client, "/shop/basket", {"product_id": str(world.products["draft"]), "op": "add"}, htmx=True)
    assert client.cookies["shop_basket"] == f"{tea}-2"  # an unlisted product is not added
    # the page itself shows the basket from the cookie
    assert f'value="{tea}:2"' in (await client.get("/shop")).text
    # the basket's answer carries the preview of the same basket (out of band): it never lags
    m = world.members
    r = await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "dec", "split": "even", "member": [str(m[0]), str(m[1]), str(m[2])]}, htmx=True)
    assert 'id="preview-body" hx-swap-oob="innerHTML"' in r.text
    text = text_of(r.text)
    # 100.00 over three members: 33.34, 33.33, 33.33 (the first gets the remainder)
    assert "职工A0 ¥33.34 ¥600.00 ¥566.66" in text
    assert "职工A2 ¥33.33 ¥600.00 ¥566.67" in text
    assert "超过本年度剩余额度" not in text
    r = await post_form(client, "/shop/preview", {"split": "even", "member": [str(m[0]), str(m[1]), str(m[2])]}, htmx=True)
    assert "职工A0 ¥33.34 ¥600.00 ¥566.66" in text_of(r.text)
    # a share over what is left is warned about before ordering
    for i in range(5):
        await hold_for(world.buyer, tea, 1, [m[0]], f"fill-{i}")  # 500 yuan held: 100 left
    await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "inc"}, htmx=True)
    r = await post_form(client, "/shop/preview", {"split": "even", "member": [str(m[0])]}, htmx=True)
    text = text_of(r.text)
    assert "1 位会员的分摊金额超过本年度剩余额度" in text and "超出 ¥100.00" in text
    r = await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "remove"}, htmx=True)
    assert "采购车是空的" in r.text


async def test_placing_an_order_through_the_form(client, world):
    await as_user(client, world.buyer)
    tea, rice = world.products["tea"], world.products["rice"]
    await post_form(client, "/shop/basket", {"product_id": str(tea), "op": "add"}, htmx=True)
    members = [str(world.members[0]), str(world.members[1])]
    form = {"line": [f"{tea}:1", f"{rice}:2"], "member": members, "idempotency_key": "web-key-1"}
    r = await post_form(client, "/shop/order", form)
    assert r.status_code == 303, r.text
    order = await Order.select().first()
    assert r.headers["location"] == f"/orders/{order['id']}?ok=placed"
    assert order["status"] == "pending_payment" and order["total_fen"] == 10000 + 2 * 2501
    shares = {a["member"]: a["amount_fen"] for a in await Allocation.select().where(Allocation.order == order["id"])}
    assert shares == {world.members[0]: 7501, world.members[1]: 7501}
    assert "shop_basket" not in client.cookies  # emptied
    # the same form again (a double click) gives the same order
    r = await post_form(client, "/shop/order", form)
    assert r.headers["location"] == f"/orders/{order['id']}?ok=placed" and await Order.count() == 1
    r = await client.get(r.headers["location"])
    text = text_of(r.text)
    assert r.status_code == 200 and "订单已提交" in text and "待付款" in text
    for label in ["收款户名", "账号", "开户行", "转账附言"]:
        assert label in text
    assert order["payment_reference"] in text and "¥150.02" in text
    assert "职工A0" in text and "¥75.01" in text  # the distribution list
    assert "订单记录" in text and "下单" in text and world.buyer.user["username"] in text  # the order's history
    # unpaid: the shares are a plan, not yet a 发放清单 to download
    assert "付款后成为发放清单" in text and "distribution?format=csv" not in r.text
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment_reference"]})
    assert r.status_code == 200, r.text
    r = await client.get(f"/orders/{order['id']}")
    assert f"/api/orders/{order['id']}/distribution?format=csv" in r.text
    assert f"/api/orders/{order['id']}/distribution?format=xlsx" in r.text
    r = await client.get(f"/api/orders/{order['id']}/distribution?format=csv")  # the download link works with the cookie
    assert r.status_code == 200 and "职工A0" in r.content.decode("utf-8-sig")
    r = await client.get("/orders")
    assert f"/orders/{order['id']}" in r.text and "¥150.02" in r.text and "已付款" in r.text
    assert "#" + str(order["id"]) not in (await client.get("/orders", params={"status": "pending_payment"})).text


async def test_an_order_over_the_cap_is_refused_in_chinese_and_changes_nothing(client, world, admin):
    year = ledger.current_year()
    assert (await admin.put(f"/api/admin/policy/{year}", json={"cap_fen": 5000})).status_code == 200
    await as_user(client, world.buyer)
    before = await snapshot()
    form = {"line": [f"{world.products['tea']}:1"], "member": [str(world.members[0])], "idempotency_key": "over-1"}
    r = await post_form(client, "/shop/order", form)
    assert r.status_code == 409
    text = text_of(r.text)
    assert "超出年度额度" in text
    assert "职工A0 A0000 ¥100.00 ¥50.00 ¥50.00" in text  # requested, remaining, over by
    assert await snapshot() == before
    # other refusals: nothing ticked, an empty basket
    r = await post_form(client, "/shop/order", {"line": [f"{world.products['tea']}:1"], "idempotency_key": "k"})
    assert r.status_code == 400 and "请选择会员" in r.text
    r = await post_form(client, "/shop/order", {"member": [str(world.members[0])], "idempotency_key": "k"})
    assert r.status_code == 400 and "采购车是空的" in r.text
    r = await post_form(client, "/shop/order", {"line": [f"{world.products['rice']}:6"], "member": [str(world.members[1])], "idempotency_key": "k2"})
    assert r.status_code == 409 and "库存不足" in r.text and "需要 6，仅剩 5" in text_of(r.text)
    assert await snapshot() == before


@pytest.fixture(scope="module")
def stripe_stub():
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def stripe_on(app, stripe_stub):
    """The app pays with Stripe (the local stand-in) for this test."""
    original = app.state.settings
    stripe_stub.reset()
    app.state.settings = msgspec.structs.replace(
        original, stripe_api_key=API_KEY, stripe_api_base=stripe_stub.url, stripe_webhook_secret=WEBHOOK_SECRET
    )
    yield stripe_stub
    app.state.settings = original
    stripe_stub.reset()


async def test_with_stripe_the_order_page_has_a_pay_button(client, world, stripe_on):
    await as_user(client, world.buyer)
    assert "付款方式：在线支付" in (await client.get("/shop")).text
    form = {"line": [f"{world.products['tea']}:1"], "member": [str(world.members[0])], "idempotency_key": "stripe-1"}
    r = await post_form(client, "/shop/order", form)
    assert r.status_code == 303, r.text
    order = await Order.select().first()
    assert order["provider"] == "stripe" and order["payment_url"]
    r = await client.get(r.headers["location"])
    assert "请完成在线支付" in r.text and "去支付 ¥100.00" in r.text
    assert f'href="{order["payment_url"]}"' in unescape(r.text)
    assert "收款户名" not in r.text
    # Stripe cannot be reached: the order is cancelled, nothing stays held, and the page says so
    stripe_on.fail_with = 500
    r = await post_form(client, "/shop/order", {**form, "idempotency_key": "stripe-2"})
    assert r.status_code == 503 and "支付服务暂时无法连接，订单已取消" in r.text
    second = await Order.select().where(Order.idempotency_key == "stripe-2").first()
    assert second["status"] == "cancelled"
    held = await MemberBudget.select(MemberBudget.held_fen).where(MemberBudget.member == world.members[0]).first()
    assert held["held_fen"] == 10000  # the first order's hold only


async def test_cancel_from_the_order_page(client, world):
    order = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "c-1")
    await as_user(client, world.buyer)
    r = await post_form(client, f"/orders/{order['id']}/cancel")
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    assert "已取消" in r.text and "订单已取消" in r.text
    r = await post_form(client, f"/orders/{order['id']}/cancel")
    assert r.status_code == 409 and "不能取消" in r.text
    other = await hold_for(world.other_buyer, world.products["lychee"], 1, [world.other_members[0]], "c-2")
    assert (await client.get(f"/orders/{other['id']}")).status_code == 403


async def test_members_page_add_deactivate_import(client, world):
    await as_user(client, world.buyer)
    r = await client.get("/members")
    assert r.status_code == 200 and "职工A0" in r.text and "A0004" in r.text
    r = await post_form(client, "/members", {"member_no": "N-100", "name": "新会员"})
    assert r.status_code == 303
    assert await Member.exists().where((Member.member_no == "N-100") & (Member.union == world.branch))
    r = await post_form(client, "/members", {"member_no": "N-100", "name": "重复"})
    assert r.status_code == 409 and "会员编号“N-100”已存在" in r.text
    m0 = world.members[0]
    r = await post_form(client, f"/members/{m0}/active", {"active": "0"}, htmx=True)
    assert r.status_code == 200 and "已停用" in r.text and r.text.lstrip().startswith("<tr")
    assert not (await Member.select(Member.active).where(Member.id == m0).first())["active"]
    r = await post_form(client, f"/members/{world.other_members[0]}/active", {"active": "0"}, htmx=True)
    assert "没有权限" in r.text and r.headers["HX-Retarget"] == "#flash"  # said at the top, not in the row
    # an import with bad lines shows each line and changes nothing
    bad = "member_no,name\nN-200,甲\nbad no,乙\nN-200,丙\n".encode()
    r = await client.post("/members/import", data={"_csrf_token": await token(client)}, files={"file": ("m.csv", bad, "text/csv")})
    assert r.status_code == 400
    text = text_of(r.text)
    assert "全部未导入" in text and "第 3 行" in text and "第 4 行" in text and "与第 2 行重复" in text
    assert not await Member.exists().where(Member.member_no == "N-200")
    good = "\ufeffmember_no,name\r\nN-200,甲\r\nN-201,乙\r\n".encode()
    r = await client.post("/members/import", data={"_csrf_token": await token(client)}, files={"file": ("m.csv", good, "text/csv")})
    assert r.status_code == 200 and "新增 2 人" in r.text
    assert await Member.count().where(Member.member_no.is_in(["N-200", "N-201"])) == 2


async def test_budget_page_shows_cap_spent_held_remaining(client, world, admin):
    order = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0], world.members[1]], "b-1")
    assert (await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})).status_code == 200
    await hold_for(world.buyer, world.products["rice"], 1, [world.members[0]], "b-2")
    await as_user(client, world.buyer)
    r = await client.get("/budget")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "每人年度额度" in text
    # cap, spent, held, remaining of the first member
    assert "A0000 职工A0 ¥600.00 ¥50.00 ¥25.01 ¥524.99" in text
    assert "A0001 职工A1 ¥600.00 ¥50.00 ¥0.00 ¥550.00" in text
    assert 'class="bar"' in r.text


# --- supplier -----------------------------------------------------------------------------------------


async def test_supplier_products_create_edit_submit(client, world):
    await as_user(client, world.supplier_user)
    r = await client.get("/supplier/products")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "赫章核桃 1斤" in text and "草稿" in text and "已上架" in text
    assert "茂名白糖罂荔枝" not in text  # another supplier's
    r = await client.get("/supplier/products/new")
    assert 'value="bijie"' in r.text and 'value="maoming"' not in r.text  # certified regions only
    assert "茶叶" in r.text
    r = await post_form(client, "/supplier/products", {"title": "", "region": "bijie", "category": "tea", "unit": "盒", "price": "abc", "stock": "x"})
    assert r.status_code == 400 and "请填写商品名称" in r.text and "请填写数字金额" in r.text and "请填写库存" in r.text
    r = await post_form(client, "/supplier/products", {"title": "毕节红茶", "region": "maoming", "category": "tea", "unit": "盒", "price": "88.5", "stock": "10"})
    assert r.status_code == 403 and "没有此产地的认证" in r.text
    r = await post_form(client, "/supplier/products", {"title": "毕节红茶", "region": "bijie", "category": "tea", "unit": "盒", "price": "¥88.5", "stock": "10", "description": "好茶"})
    assert r.status_code == 303
    product = await Product.select().where(Product.title == "毕节红茶").first()
    assert product["price_fen"] == 8850 and product["status"] == "draft" and product["stock"] == 10
    r = await client.get(f"/supplier/products/{product['id']}/edit")
    assert 'value="88.50"' in r.text
    r = await post_form(client, f"/supplier/products/{product['id']}", {"title": "毕节红茶 礼盒", "region": "bijie", "category": "tea", "unit": "盒", "price": "90", "stock": "12", "stock_shown": "10", "description": "好茶"})
    assert r.status_code == 303
    r = await post_form(client, f"/supplier/products/{product['id']}/submit", htmx=True)
    assert r.status_code == 200 and "待审核" in r.text
    row = await Product.select().where(Product.id == product["id"]).first()
    assert (row["title"], row["price_fen"], row["status"]) == ("毕节红茶 礼盒", 9000, "pending_review")
    assert (await client.get(f"/supplier/products/{world.products['lychee']}/edit")).status_code == 403


async def test_supplier_orders_show_only_its_lines(client, world):
    await world.buyer.post(
        "/api/orders",
        json={"lines": [{"product_id": world.products["tea"], "quantity": 2}], "members": [world.members[0]]},
        headers={"Idempotency-Key": "s-1"},
    )
    await as_user(client, world.supplier_user)
    r = await client.get("/supplier/orders")
    text = text_of(r.text)
    assert "毕节高山绿茶 250克 2 ¥200.00" in text and "待付款" in text
    assert "职工A0" not in text
    await as_user(client, world.other_supplier_user)
    assert "毕节高山绿茶" not in (await client.get("/supplier/orders")).text


# --- admin ----------------------------------------------------------------------------------------------


async def test_admin_reviews_approve_and_reject(client, world):
    draft = world.products["draft"]
    assert (await world.supplier_user.post(f"/api/supplier/products/{draft}/submit")).status_code == 200
    r = await page_login(client, "admin", "admin-password")
    assert r.status_code == 303
    r = await client.get("/admin/reviews")
    assert "赫章核桃 1斤" in r.text and "¥30.00" in r.text
    r = await post_form(client, f"/admin/reviews/{draft}/reject", {"reason": ""}, htmx=True)
    assert "请填写驳回原因" in r.text
    r = await post_form(client, f"/admin/reviews/{draft}/reject", {"reason": "图片不清晰"}, htmx=True)
    assert "已驳回" in r.text and "图片不清晰" in r.text
    assert (await Product.select(Product.status).where(Product.id == draft).first())["status"] == "rejected"
    r = await post_form(client, f"/admin/reviews/{draft}/approve", htmx=True)
    assert "不能通过审核" in r.text  # rejected: not pending
    await world.supplier_user.post(f"/api/supplier/products/{draft}/submit")
    r = await post_form(client, f"/admin/reviews/{draft}/approve", htmx=True)
    assert "已上架" in r.text
    assert (await Product.select(Product.status).where(Product.id == draft).first())["status"] == "listed"


async def test_admin_confirms_a_transfer_with_its_reference(client, world):
    order = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "t-1")
    reference = order["payment"]["reference"]
    await page_login(client, "admin", "admin-password")
    r = await client.get("/admin/orders")
    assert r.status_code == 200 and reference in r.text and "GZ-TH-001工会" in r.text and "¥100.00" in r.text
    r = await post_form(client, f"/admin/orders/{order['id']}/confirm", {"reference": "XFBF99999999"}, htmx=True)
    assert "转账附言：与订单不一致" in r.text
    assert (await Order.select(Order.status).first())["status"] == "pending_payment"
    r = await post_form(client, f"/admin/orders/{order['id']}/confirm", {"reference": reference.lower()}, htmx=True)
    assert "已确认收款" in r.text and "已付款" in r.text
    assert (await Order.select(Order.status).first())["status"] == "paid"
    assert (await MemberBudget.select().first())["spent_fen"] == 10000


async def test_admin_refunds_a_late_payment_from_the_list(client, world):
    order = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "late-1")
    assert (await world.buyer.post(f"/api/orders/{order['id']}/cancel")).status_code == 200
    await Order.update({Order.needs_refund: True}).where(Order.id == order["id"])  # the transfer came in anyway
    await page_login(client, "admin", "admin-password")
    r = await client.get("/admin/orders")
    assert "需要退款的订单（<span id=\"late-count\">1</span>）" in r.text and f'id="late-{order["id"]}"' in r.text
    r = await post_form(client, f"/admin/orders/{order['id']}/refund", htmx=True)
    assert r.status_code == 200 and "已发起退款" in r.text
    r = await client.get(f"/orders/{order['id']}")
    assert "退款记录" in r.text and "待退（转账）" in r.text and "¥100.00" in r.text


async def test_admin_policy_and_targets(client, world):
    await page_login(client, "admin", "admin-password")
    year = ledger.current_year()
    r = await client.get("/admin/policy")
    assert r.status_code == 200 and "¥600.00" in r.text
    r = await post_form(client, "/admin/policy", {"year": str(year), "cap": "500"})
    assert r.status_code == 303
    assert (await policy.get_policy(year))["cap_fen"] == 50000
    r = await post_form(client, "/admin/policy", {"year": str(year), "cap": "五百"})
    assert r.status_code == 400 and "请填写年度和每人每年的额度" in r.text
    r = await client.get("/admin/targets", params={"year": str(year)})
    assert r.status_code == 200 and "GZ-TH-001工会" in r.text
    r = await post_form(client, f"/admin/targets/{world.district}/{year}", {"target": "12,345.6"}, htmx=True)
    assert r.status_code == 200 and "已保存" in r.text and "¥12,345.60" in r.text
    assert await targets.target_for(world.district, year) == 1234560


# --- reports and audit -------------------------------------------------------------------------------------


async def test_auditor_sees_targets_as_bars_members_and_the_ledger(client, world, admin):
    year = ledger.current_year()
    await targets.set_target(world.district, year, 40000)  # 400 yuan
    order = await hold_for(world.buyer, world.products["tea"], 1, [world.members[0]], "r-1")
    await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    await as_user(client, world.auditor)
    r = await client.get("/reports/targets")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "消费帮扶目标完成情况" in text and "GZ-TH工会" in text and "GZ-TH-001工会" in text
    assert "MM-001工会" not in text  # outside the auditor's subtree
    assert "25.0%" in text and "¥400.00" in text and "¥100.00" in text
    assert "chart-row" in r.text and 'class="progress mid"' not in r.text and 'class="progress low"' in r.text
    assert f"/api/reports/targets?year={year}&amp;union_id={world.district}&amp;format=csv" in r.text
    r = await client.get("/audit/members", params={"min_ratio": "0"})
    assert "职工A0" in text_of(r.text) and "16.7%" in text_of(r.text)
    r = await client.get("/audit/ledger")
    text = text_of(r.text)
    assert "占用" in text and "扣减" in text and "职工A0" in text
    r = await client.get("/audit/ledger", params={"kind": "capture"})
    text = text_of(r.text)
    assert "#" + str(order["id"]) in text and "扣减 ¥100.00" in text and "占用 ¥100.00" not in text and "共 1 条" in text
    r = await client.get("/audit/ledger/verify", headers=HTMX)
    assert "校验通过" in r.text and "共 2 条流水" in r.text
    # a broken ledger is reported, not hidden
    await LedgerEntry.update({LedgerEntry.amount_fen: 1}).where(LedgerEntry.kind == "capture")
    r = await client.get("/audit/ledger/verify", headers=HTMX)
    assert "校验发现" in r.text and "哈希与流水内容不符" in r.text


# --- CSRF -------------------------------------------------------------------------------------------------------


async def test_form_posts_without_the_csrf_token_are_refused(client, world):
    r = await client.post("/login", data={"username": world.buyer.user["username"], "password": PASSWORD})
    assert r.status_code == 403 and "shop_token" not in client.cookies
    await as_user(client, world.buyer)
    before = await snapshot()
    form = {"line": [f"{world.products['tea']}:1"], "member": [str(world.members[0])], "idempotency_key": "csrf-1"}
    r = await client.post("/shop/order", data=form)
    assert r.status_code == 403 and "页面已过期" in r.text
    r = await client.post("/shop/order", data={**form, "_csrf_token": "f" * 128})
    assert r.status_code == 403
    assert await snapshot() == before
    # HTMX sends the token as a header
    r = await client.post("/shop/basket", data={"product_id": str(world.products["tea"])}, headers={**HTMX, "x-csrftoken": await token(client)})
    assert r.status_code == 200
    # the JSON API (Bearer) needs no CSRF token
    r = await world.buyer.post("/api/orders", json={"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": [world.members[0]]}, headers={"Idempotency-Key": "api-1"})
    assert r.status_code == 201
