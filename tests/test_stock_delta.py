"""Stock edits say what they change: the supplier's edit form sends the stock it showed with the
stock typed, and the difference is applied to the stock as it is then, so units that buyers
reserved while the page was open stay reserved. The API's PATCH keeps `stock` (set) and gains
`stock_delta` (adjust). Over HTTP, against the real database."""

from __future__ import annotations

import re
from html import unescape

import pytest

from catalog.tables import Product
from tests.conftest import assert_problem
from tests.test_web import as_user, hold_for, post_form
from tests.world import build_world


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin, members=10)


async def product_row(product_id: int) -> dict:
    return await Product.select().where(Product.id == product_id).first()


def form_fields(html: str) -> dict[str, str]:
    """What a browser would post from the page's form: its inputs (hidden ones too), the
    selected option of each select, and the textareas."""
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name[1]] = unescape(value[1]) if value else ""
    for name, options in re.findall(r'<select[^>]*name="([^"]*)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', options)
        fields[name] = unescape(selected[1]) if selected else ""
    for name, text in re.findall(r'<textarea[^>]*name="([^"]*)"[^>]*>(.*?)</textarea>', html, re.S):
        fields[name] = unescape(text)
    return fields


async def open_edit_page(client, product_id: int) -> dict[str, str]:
    r = await client.get(f"/supplier/products/{product_id}/edit")
    assert r.status_code == 200, r.text
    return form_fields(r.text)


# --- the edit page ---------------------------------------------------------------------------


@pytest.mark.parametrize(("typed_change", "expected"), [(0, 70), (20, 90)])
async def test_the_edit_form_keeps_what_buyers_reserved_while_it_was_open(client, world, typed_change, expected):
    tea = world.products["tea"]
    await as_user(client, world.supplier_user)
    form = await open_edit_page(client, tea)
    shown = int(form["stock"])
    assert shown == 100
    await hold_for(world.buyer, tea, 30, world.members, "race-1")  # buyers reserve 30 meanwhile
    assert (await product_row(tea))["stock"] == 70
    form.update(title="毕节高山绿茶 250克（改错字）", stock=str(shown + typed_change))
    r = await post_form(client, f"/supplier/products/{tea}", form)
    assert r.status_code == 303, r.text
    row = await product_row(tea)
    assert row["title"] == "毕节高山绿茶 250克（改错字）"
    assert row["stock"] == expected  # shown - reserved (+ what the supplier added): nothing oversold


async def test_the_edit_form_refuses_stock_below_zero_and_a_page_without_the_shown_stock(client, world):
    rice = world.products["rice"]  # stock 5
    await as_user(client, world.supplier_user)
    form = await open_edit_page(client, rice)
    await hold_for(world.buyer, rice, 3, world.members[:1], "race-2")
    before = await product_row(rice)
    r = await post_form(client, f"/supplier/products/{rice}", {**form, "title": "新名称", "stock": "0"})
    assert r.status_code == 409 and "当前库存为 2" in r.text and "将小于 0" in r.text
    assert await product_row(rice) == before
    stale = {k: v for k, v in form.items() if k != "stock_shown"}
    r = await post_form(client, f"/supplier/products/{rice}", {**stale, "title": "新名称", "stock": "9"})
    assert r.status_code == 400 and "页面已过期" in r.text
    assert await product_row(rice) == before


# --- the API ------------------------------------------------------------------------------------


async def test_patch_stock_delta_adjusts_the_stock_as_it_is_now(world):
    tea, sup = world.products["tea"], world.supplier_user
    await hold_for(world.buyer, tea, 30, world.members, "delta-1")
    r = await sup.patch(f"/api/supplier/products/{tea}", json={"stock_delta": 5})
    assert r.status_code == 200 and r.json()["stock"] == 75, r.text
    r = await sup.patch(f"/api/supplier/products/{tea}", json={"stock_delta": -3})
    assert r.status_code == 200 and r.json()["stock"] == 72 and r.json()["status"] == "listed"
    r = await sup.patch(f"/api/supplier/products/{tea}", json={"stock": 50})  # `stock` still sets it
    assert r.status_code == 200 and r.json()["stock"] == 50


async def test_patch_stock_delta_refusals_change_nothing(world):
    tea, sup = world.products["tea"], world.supplier_user
    before = await product_row(tea)
    url = f"/api/supplier/products/{tea}"
    body = assert_problem(await sup.patch(url, json={"title": "新名称", "stock_delta": -101}), 409, "invalid_state")
    assert body["stock"] == 100
    body = assert_problem(await sup.patch(url, json={"stock": 10, "stock_delta": 5}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "stock_delta"
    for bad in (1_000_001, -1_000_001, 1.5, "5", True, None, 2**63):
        body = assert_problem(await sup.patch(url, json={"stock_delta": bad}), 400, "validation_failed")
        assert body["errors"][0]["field"] == "stock_delta", bad
    assert await product_row(tea) == before
    assert (await sup.patch(url, json={"stock": 1_000_000})).status_code == 200
    assert_problem(await sup.patch(url, json={"stock_delta": 1}), 409, "invalid_state")  # above what `stock` may be
    assert_problem(await world.other_supplier_user.patch(url, json={"stock_delta": 1}), 403, "forbidden")
    assert (await product_row(tea))["stock"] == 1_000_000


async def test_stock_delta_is_in_the_openapi_schema(client):
    schema = (await client.get("/schema/openapi.json")).json()
    field = schema["components"]["schemas"]["ProductPatch"]["properties"]["stock_delta"]
    assert "reserved" in str(field)
    assert "-1000000" in str(field) and "1000000" in str(field)
