"""Orders over HTTP: placement (even split, allocations, idempotency), every refusal
changing nothing, cancel, expiry, scoping and the Shanghai budget year."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from budgets import verification
from budgets.tables import CapPolicy, LedgerEntry, Member, MemberBudget
from catalog.tables import Product
from shop.orders import cancellation as orders
from shop.orders.tables import Allocation, Order, OrderLine
from tests.conftest import assert_problem
from tests.world import build_world


@pytest.fixture
async def world(make_user, admin):
    return await build_world(make_user, admin)


async def stock(product_id: int) -> int:
    return (await Product.select(Product.stock).where(Product.id == product_id).first())["stock"]


async def budget(member_id: int, year: int = 2026) -> tuple[int, int]:
    row = await MemberBudget.select().where((MemberBudget.member == member_id) & (MemberBudget.year == year)).first()
    return (row["held_fen"], row["spent_fen"]) if row else (0, 0)


async def snapshot():
    """Everything an order touches, to show that a refusal changed nothing."""
    return (
        await Order.count(),
        await OrderLine.count(),
        await Allocation.count(),
        await LedgerEntry.count(),
        [tuple(r.values()) for r in await MemberBudget.select(MemberBudget.member, MemberBudget.held_fen, MemberBudget.spent_fen).order_by(MemberBudget.id)],
        [tuple(r.values()) for r in await Product.select(Product.id, Product.stock).order_by(Product.id)],
    )


def set_clock(app, when: datetime):
    app.state.clock = lambda: when


@pytest.fixture
def fixed_clock(app):
    original = app.state.clock
    set_clock(app, datetime(2026, 5, 20, 2, 0, tzinfo=timezone.utc))
    yield
    app.state.clock = original


async def place(api, body, key="k-1"):
    return await api.post("/api/orders", json=body, headers={"Idempotency-Key": key})


async def test_even_split_gives_remainder_to_first_members(world, fixed_clock):
    a, b, c = world.members[:3]
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}, {"product_id": world.products["rice"], "quantity": 2}], "members": [c, a, b]}
    r = await place(world.buyer, body)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending_payment" and order["year"] == 2026
    assert order["total_fen"] == 10000 + 2 * 2501 == 15002
    assert [(l["product_id"], l["quantity"], l["unit_price_fen"], l["amount_fen"]) for l in order["lines"]] == [
        (world.products["tea"], 1, 10000, 10000),
        (world.products["rice"], 2, 2501, 5002),
    ]
    # 15002 / 3 = 5000 r 2: the first two members given get one fen more
    assert [(x["member_id"], x["amount_fen"]) for x in order["allocations"]] == [(c, 5001), (a, 5001), (b, 5000)]
    assert order["payment"]["provider"] == "transfer"
    assert order["payment"]["reference"] == f"XFBF{order['id']:08d}"
    assert order["payment"]["expires_at"].startswith("2026-06-19T02:00:00")  # 30 days for transfer
    assert order["payment"]["bank"]["account_no"]
    assert await stock(world.products["tea"]) == 99 and await stock(world.products["rice"]) == 3
    assert await budget(c) == (5001, 0) and await budget(a) == (5001, 0) and await budget(b) == (5000, 0)
    entries = await LedgerEntry.select().where(LedgerEntry.order_id == order["id"])
    assert sorted((e["member"], e["kind"], e["amount_fen"]) for e in entries) == sorted([(c, "hold", 5001), (a, "hold", 5001), (b, "hold", 5000)])
    assert (await verification.verify_ledger()).ok


async def test_explicit_allocations_must_add_up(world, fixed_clock):
    a, b = world.members[:2]
    line = [{"product_id": world.products["tea"], "quantity": 1}]
    before = await snapshot()
    r = await place(world.buyer, {"lines": line, "allocations": [{"member_id": a, "amount_fen": 6000}, {"member_id": b, "amount_fen": 3000}]})
    body = assert_problem(r, 400, "validation_failed")
    assert body["errors"][0]["field"] == "allocations"
    assert await snapshot() == before
    r = await place(world.buyer, {"lines": line, "allocations": [{"member_id": a, "amount_fen": 7000}, {"member_id": b, "amount_fen": 3000}]})
    assert r.status_code == 201, r.text
    assert [(x["member_id"], x["amount_fen"]) for x in r.json()["allocations"]] == [(a, 7000), (b, 3000)]
    assert await budget(a) == (7000, 0) and await budget(b) == (3000, 0)


async def test_idempotency_key(world, fixed_clock):
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:2]}
    first = await place(world.buyer, body, key="same")
    assert first.status_code == 201
    again = await place(world.buyer, {"members": world.members[:2], "lines": [{"quantity": 1, "product_id": world.products["tea"]}]}, key="same")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert await Order.count() == 1 and await stock(world.products["tea"]) == 99
    assert await budget(world.members[0]) == (5000, 0)
    other = await place(world.buyer, {**body, "members": world.members[:3]}, key="same")
    assert_problem(other, 409, "idempotency_conflict")
    # the key is scoped to the branch: another branch may use the same key
    r = await place(world.other_buyer, {"lines": [{"product_id": world.products["lychee"], "quantity": 1}], "members": world.other_members}, key="same")
    assert r.status_code == 201, r.text
    assert_problem(await world.buyer.post("/api/orders", json=body), 400, "validation_failed")
    assert_problem(await place(world.buyer, body, key="k" * 65), 400, "validation_failed")
    assert await Order.count() == 2


async def test_a_replay_answers_the_order_even_when_it_could_not_be_placed_now(world, fixed_clock):
    """The same key and body answer the order placed before, whatever has changed since: the
    stock sold out, the product delisted, the members' quota spent, a member deactivated."""
    tea = world.products["tea"]
    body = {"lines": [{"product_id": tea, "quantity": 2}], "members": world.members[:2]}
    first = await place(world.buyer, body, key="before")
    assert first.status_code == 201, first.text
    await Product.update({Product.stock: 0}).where(Product.id == tea)
    before = await snapshot()
    again = await place(world.buyer, body, key="before")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    await Product.update({Product.status: "delisted"}).where(Product.id == tea)
    await Member.update({Member.active: False}).where(Member.id == world.members[1])
    await CapPolicy.insert(CapPolicy(year=2026, cap_fen=100)).on_conflict(action="DO NOTHING")
    again = await place(world.buyer, body, key="before")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    assert await snapshot() == before  # nothing taken, held or written by the replays
    other = await place(world.buyer, {**body, "members": world.members[:1]}, key="before")
    assert_problem(other, 409, "idempotency_conflict")


async def test_concurrent_twins_make_one_order(world, fixed_clock):
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:2]}
    results = await asyncio.gather(*[place(world.buyer, body, key="twin") for _ in range(6)])
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert await Order.count() == 1 and await stock(world.products["tea"]) == 99


async def test_cap_exceeded_lists_every_member_over_and_changes_nothing(world, fixed_clock):
    a, b, c = world.members[:3]
    await CapPolicy.insert(CapPolicy(year=2026, cap_fen=12000))
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "allocations": [{"member_id": a, "amount_fen": 10000}]}, key="first")
    assert r.status_code == 201
    before = await snapshot()
    r = await place(
        world.buyer,
        {"lines": [{"product_id": world.products["tea"], "quantity": 3}], "allocations": [{"member_id": a, "amount_fen": 5000}, {"member_id": b, "amount_fen": 13000}, {"member_id": c, "amount_fen": 12000}]},
    )
    body = assert_problem(r, 409, "cap_exceeded")
    assert body["members"] == [
        {"member_id": a, "cap_fen": 12000, "spent_fen": 0, "held_fen": 10000, "requested_fen": 5000},
        {"member_id": b, "cap_fen": 12000, "spent_fen": 0, "held_fen": 0, "requested_fen": 13000},
    ]
    assert await snapshot() == before


async def test_stock_and_listing_refusals(world, fixed_clock):
    before = await snapshot()
    r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 101}, {"product_id": world.products["rice"], "quantity": 6}], "members": world.members[:1]})
    body = assert_problem(r, 409, "out_of_stock")
    assert body["products"] == [
        {"product_id": world.products["tea"], "requested": 101, "available": 100},
        {"product_id": world.products["rice"], "requested": 6, "available": 5},
    ]
    body = assert_problem(await place(world.buyer, {"lines": [{"product_id": world.products["draft"], "quantity": 1}], "members": world.members[:1]}), 409, "not_listed")
    assert body["products"] == [{"product_id": world.products["draft"], "status": "draft"}]
    assert_problem(await place(world.buyer, {"lines": [{"product_id": 99999, "quantity": 1}], "members": world.members[:1]}), 404, "not_found")
    assert await snapshot() == before


@pytest.mark.parametrize(
    "make_body, status, code, field",
    [
        (lambda w: {"lines": [], "members": w.members[:1]}, 400, "validation_failed", "lines"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 0}], "members": w.members[:1]}, 400, "validation_failed", "lines[0].quantity"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1.5}], "members": w.members[:1]}, 400, "validation_failed", "lines[0].quantity"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": "2"}], "members": w.members[:1]}, 400, "validation_failed", "lines[0].quantity"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}, {"product_id": w.products["tea"], "quantity": 1}], "members": w.members[:1]}, 400, "validation_failed", "lines"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": [w.members[0], w.members[0]]}, 400, "validation_failed", "members"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}]}, 400, "validation_failed", "members"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": w.members[:1], "allocations": [{"member_id": w.members[0], "amount_fen": 10000}]}, 400, "validation_failed", "members"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "allocations": [{"member_id": w.members[0], "amount_fen": -10000}]}, 400, "validation_failed", "allocations[0].amount_fen"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "allocations": [{"member_id": w.members[0], "amount_fen": 100.0}]}, 400, "validation_failed", "allocations[0].amount_fen"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": w.members[:1], "coupon": "x"}, 400, "validation_failed", "coupon"),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": w.other_members[:1]}, 403, "forbidden", None),
        (lambda w: {"lines": [{"product_id": w.products["tea"], "quantity": 1}], "members": [999999]}, 404, "not_found", None),
    ],
)
async def test_bad_orders_change_nothing(world, fixed_clock, make_body, status, code, field):
    before = await snapshot()
    body = assert_problem(await place(world.buyer, make_body(world)), status, code)
    if field:
        assert body["errors"][0]["field"] == field, body
    assert await snapshot() == before


async def test_inactive_member_gets_no_allocation(world, fixed_clock):
    await Member.update({Member.active: False}).where(Member.id == world.members[1])
    before = await snapshot()
    body = assert_problem(await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:2]}), 409, "invalid_state")
    assert body["members"] == [world.members[1]]
    assert await snapshot() == before


async def test_total_below_one_fen_a_member_is_refused(world, fixed_clock):
    await Product.update({Product.price_fen: 2}).where(Product.id == world.products["tea"])
    body = assert_problem(await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:3]}), 400, "validation_failed")
    assert body["errors"][0]["field"] == "members"


async def test_only_buyers_place_orders(world, fixed_clock, anon):
    body = {"lines": [{"product_id": world.products["tea"], "quantity": 1}], "members": world.members[:1]}
    assert_problem(await place(anon, body), 401, "unauthenticated")
    for api in (world.supplier_user, world.auditor, world.admin):
        assert_problem(await place(api, body), 403, "forbidden")
    assert await Order.count() == 0


async def test_cancel_releases_stock_and_holds(world, fixed_clock):
    before = await snapshot()
    order = (await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 2}], "members": world.members[:2]})).json()
    assert_problem(await world.other_buyer.post(f"/api/orders/{order['id']}/cancel"), 403, "forbidden")
    r = await world.buyer.post(f"/api/orders/{order['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await stock(world.products["tea"]) == 100
    assert await budget(world.members[0]) == (0, 0)
    assert_problem(await world.buyer.post(f"/api/orders/{order['id']}/cancel"), 409, "invalid_state")
    assert_problem(await world.buyer.post("/api/orders/999999/cancel"), 404, "not_found")
    kinds = [e["kind"] for e in await LedgerEntry.select(LedgerEntry.kind).where(LedgerEntry.member == world.members[0]).order_by(LedgerEntry.seq)]
    assert kinds == ["hold", "release"]
    assert (await verification.verify_ledger()).ok
    assert (await snapshot())[5] == before[5]


async def test_expiry_releases_once_even_when_run_concurrently(app, world, fixed_clock):
    order = (await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 3}], "members": world.members[:1]})).json()
    placed = datetime(2026, 5, 20, 2, 0, tzinfo=timezone.utc)
    assert await orders.expire_due(placed + timedelta(days=29)) == 0
    later = placed + timedelta(days=30, seconds=1)
    counts = await asyncio.gather(orders.expire_due(later), orders.expire_due(later), orders.expire_due(later))
    assert sum(counts) == 1
    detail = (await world.buyer.get(f"/api/orders/{order['id']}")).json()
    assert detail["status"] == "expired"
    assert await stock(world.products["tea"]) == 100 and await budget(world.members[0]) == (0, 0)
    assert await LedgerEntry.count().where(LedgerEntry.kind == "release") == 1
    assert (await verification.verify_ledger()).ok


@pytest.mark.parametrize(
    "moment, year",
    [
        (datetime(2025, 12, 31, 15, 59, 59, tzinfo=timezone.utc), 2025),  # 23:59:59 in Shanghai
        (datetime(2025, 12, 31, 16, 0, 0, tzinfo=timezone.utc), 2026),  # 00:00 on 1 January in Shanghai
    ],
)
async def test_budget_year_is_the_shanghai_year(app, world, moment, year):
    set_clock(app, moment)
    try:
        r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 6}], "members": world.members[:1]})
    finally:
        app.state.clock = lambda: datetime.now(timezone.utc)
    assert r.status_code == 201, r.text
    assert r.json()["year"] == year
    assert await budget(world.members[0], year) == (60000, 0)
    assert await budget(world.members[0], year + 1 if year == 2025 else year - 1) == (0, 0)


async def test_a_full_year_does_not_block_the_next(app, world):
    a = world.members[0]
    for key, moment in (("late", datetime(2025, 12, 31, 15, 59, tzinfo=timezone.utc)), ("early", datetime(2025, 12, 31, 16, 1, tzinfo=timezone.utc))):
        set_clock(app, moment)
        r = await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 6}], "members": [a]}, key=key)
        assert r.status_code == 201, r.text
    app.state.clock = lambda: datetime.now(timezone.utc)
    assert await budget(a, 2025) == (60000, 0) and await budget(a, 2026) == (60000, 0)


async def test_scoping_of_lists_and_details(world, fixed_clock):
    mine = (await place(world.buyer, {"lines": [{"product_id": world.products["tea"], "quantity": 1}, {"product_id": world.products["lychee"], "quantity": 1}], "members": world.members[:2]}, key="a")).json()
    theirs = (await place(world.other_buyer, {"lines": [{"product_id": world.products["lychee"], "quantity": 1}], "members": world.other_members}, key="b")).json()
    ids = lambda r: [o["id"] for o in r.json()["items"]]  # noqa: E731
    assert ids(await world.buyer.get("/api/orders")) == [mine["id"]]
    assert ids(await world.other_buyer.get("/api/orders")) == [theirs["id"]]
    assert ids(await world.auditor.get("/api/orders")) == [mine["id"]]
    assert ids(await world.admin.get("/api/orders")) == [theirs["id"], mine["id"]]
    assert (await world.admin.get("/api/orders?limit=1&offset=1")).json() == {"items": [(await world.admin.get(f"/api/orders/{mine['id']}")).json()], "total": 2}
    assert_problem(await world.other_buyer.get(f"/api/orders/{mine['id']}"), 403, "forbidden")
    assert_problem(await world.auditor.get(f"/api/orders/{theirs['id']}"), 403, "forbidden")
    assert_problem(await world.buyer.get("/api/orders/424242"), 404, "not_found")
    # a supplier sees the orders holding its products, only its own lines, and no members
    seen = (await world.supplier_user.get("/api/orders")).json()
    assert [o["id"] for o in seen["items"]] == [mine["id"]]
    assert [l["product_id"] for l in seen["items"][0]["lines"]] == [world.products["tea"]]
    assert seen["items"][0]["allocations"] == [] and seen["items"][0]["total_fen"] == 10000
    assert ids(await world.other_supplier_user.get("/api/orders")) == [theirs["id"], mine["id"]]
    assert ids(await world.buyer.get("/api/orders?status=cancelled")) == []
    assert ids(await world.buyer.get("/api/orders?year=2026&status=pending_payment")) == [mine["id"]]
    assert_problem(await world.buyer.get("/api/orders?status=bogus"), 400, "validation_failed")
    assert_problem(await world.buyer.get("/api/orders?limit=201"), 400, "validation_failed")


# --- PostgreSQL: the stock is taken in the last statement, from products read unlocked ---------


@pytest.fixture
def change_after_read(monkeypatch):
    """Make the changes the test appends (SQL over the product `$1`, product id) happen,
    committed by another connection, between placing's unlocked read of the products and
    its last statement, the first time only: what a supplier's edit or another order does
    at that moment. Gives (changes, calls): `calls` counts the reads."""
    from catalog import stock as stock_module
    from shop.orders import placement

    if not placement.is_postgres(Order):
        pytest.skip("SQLite takes the stock under its one write lock; nothing can come between")
    changes: list[tuple[str, int]] = []
    calls: list[int] = []
    priced, lock_for_hold = stock_module.priced, placement.ledger.lock_for_hold

    def priced_counted(lines, rows):
        calls.append(1)
        return priced(lines, rows)

    async def changed_then_locked(*args, **kwargs):
        if len(calls) == 1:  # the first read is done: another connection commits the changes now
            for sql, product_id in changes:
                await Order._meta.db._run_in_new_connection(sql, [product_id])
        return await lock_for_hold(*args, **kwargs)

    monkeypatch.setattr(stock_module, "priced", priced_counted)
    monkeypatch.setattr(placement.ledger, "lock_for_hold", changed_then_locked)
    return changes, calls


async def test_a_price_changed_after_the_read_is_placed_again_at_the_new_price(world, fixed_clock, change_after_read):
    changes, calls = change_after_read
    tea = world.products["tea"]
    changes.append(("UPDATE catalog_product SET price_fen = 12000 WHERE id = $1", tea))
    r = await place(world.buyer, {"lines": [{"product_id": tea, "quantity": 2}], "members": world.members[:2]})
    assert r.status_code == 201, r.text
    assert len(calls) == 2  # read, found changed at the take, read again
    order = r.json()
    assert order["total_fen"] == 24000 and order["lines"][0]["unit_price_fen"] == 12000
    assert await stock(tea) == 98  # taken once
    assert await budget(world.members[0]) == (12000, 0) and await budget(world.members[1]) == (12000, 0)
    assert await Order.count() == 1 and await LedgerEntry.count() == 2
    assert (await verification.verify_ledger()).ok


async def test_stock_sold_after_the_read_is_refused_and_changes_nothing(world, fixed_clock, change_after_read):
    changes, _ = change_after_read
    tea, rice = world.products["tea"], world.products["rice"]
    changes.append(("UPDATE catalog_product SET stock = 1 WHERE id = $1", rice))
    before = await snapshot()
    r = await place(world.buyer, {"lines": [{"product_id": tea, "quantity": 1}, {"product_id": rice, "quantity": 2}], "members": world.members[:1]})
    body = assert_problem(r, 409, "out_of_stock")
    assert body["products"] == [{"product_id": rice, "requested": 2, "available": 1}]
    after = await snapshot()
    assert after[:5] == before[:5]  # no order, line, allocation, entry or hold
    assert await stock(tea) == 100 and await stock(rice) == 1  # the tea taken in the same statement went back


async def test_a_product_delisted_after_the_read_is_refused(world, fixed_clock, change_after_read):
    changes, _ = change_after_read
    tea = world.products["tea"]
    changes.append(("UPDATE catalog_product SET status = 'delisted' WHERE id = $1", tea))
    before = await snapshot()
    body = assert_problem(await place(world.buyer, {"lines": [{"product_id": tea, "quantity": 1}], "members": world.members[:1]}), 409, "not_listed")
    assert body["products"] == [{"product_id": tea, "status": "delisted"}]
    assert await snapshot() == before
