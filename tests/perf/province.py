"""A province-sized shop on PostgreSQL, written in bulk, exactly as the services would have
left it.

The tree: the province federation (GD), 20 city federations under it, 5 districts in each,
2,000 branches (one directly under each city federation, the rest spread unevenly over the
districts), 100 members in each (200,000; about 2 % inactive), a target for every union for
the year, a few paired regions, suppliers and listed products.

The purchases are a simulation of the order flow in time order (Asia/Shanghai, through the
budget year): a branch buyer orders a product for 1 to 100 of its members (split evenly,
`shop.orders.placement.split_evenly`); members who would go over the 60000-fen cap are left out (the
real shop answers `cap_exceeded` and the buyer retries without them); the hold is placed;
later the order is paid (capture), cancelled or expired (release), and some paid orders are
refunded in part or whole (`shop.refunds.pro_rata` over the allocations). Every budget change
is appended exactly as `budgets.ledger._append` does: in ascending member id within a
transaction, all with that transaction's `at`, chained per member-year with
`budgets.ledger.entry_hash` from `GENESIS_HASH`. The budget rows (held, spent, entries,
last_hash) and the per-branch-year totals (spent, orders) are the ones `hold`, `capture`,
`release` and `refund` would have kept; the orders, their lines, allocations and refunds are
written as well, so order_id in the ledger points at a real order.

It grows: `Province.grow_to(n)` carries the simulation on until the ledger holds at least n
entries (it stops between transactions), appends the new entries (COPY) and upserts the rows
that changed. Ids are assigned here as PostgreSQL would have: an `INSERT … ON CONFLICT DO
NOTHING` (budget rows, totals) and a rolled-back order (refused with cap_exceeded) take their
sequence values too; the sequences are set where the service would have left them.
`journal` records every budget call, and `replay_through_service` makes the same calls through
budgets.ledger, so that the two can be compared row for row (bench_reports does, on a
small dense ledger). The timeline runs from 2 January to the day before today (or 20
December), so that nothing is dated in the future; on a given day the output is the same
(seeded).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from budgets.ledger import GENESIS_HASH, MOVES, entry_hash
from budgets.policy import DEFAULT_CAP_FEN
from common.clock import SHANGHAI

CITIES = [
    ("GZ", "广州"), ("SZ", "深圳"), ("ZH", "珠海"), ("ST", "汕头"), ("FS", "佛山"),
    ("SG", "韶关"), ("ZJ", "湛江"), ("ZQ", "肇庆"), ("JM", "江门"), ("MM", "茂名"),
    ("HZ", "惠州"), ("MZ", "梅州"), ("SW", "汕尾"), ("HY", "河源"), ("YJ", "阳江"),
    ("QY", "清远"), ("DG", "东莞"), ("ZS", "中山"), ("CZ", "潮州"), ("JY", "揭阳"),
]
DISTRICTS_PER_CITY = 5
BRANCHES = 2000
MEMBERS_PER_BRANCH = 100
INACTIVE_SHARE = 0.02

# (region code, name, province, paired city codes, supplier, [(title, category, unit, price_fen)])
REGIONS = [
    ("bijie", "毕节", "贵州", ["GZ", "FS", "DG", "ZS", "JM"], "毕节农业合作社",
     [("毕节高山绿茶 250克", "tea", "盒", 4580), ("威宁苦荞米 5斤", "grain_oil", "袋", 2980), ("赫章核桃 1斤", "dried", "袋", 3900)]),
    ("qiandongnan", "黔东南", "贵州", ["GZ", "SZ", "ZH", "HZ"], "黔东南苗岭合作社",
     [("从江香猪腊肉 1斤", "meat_egg", "袋", 8800), ("黔东南茶油 1升", "grain_oil", "瓶", 12800)]),
    ("meizhou", "梅州", "广东", ["ST", "SG", "ZJ", "ZQ", "MM", "MZ", "SW", "HY", "YJ", "QY", "CZ", "JY"], "梅州客家农产品公司",
     [("梅州金柚 2个", "fruit", "箱", 2500), ("大埔蜜柚 4斤", "fruit", "箱", 1280), ("梅州单丛茶 100克", "tea", "罐", 5800)]),
]

TRANSFER_HOLD = timedelta(days=30)  # Settings.transfer_hold_days: an unpaid transfer order's hold


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def split_evenly(total_fen: int, member_ids: list[int]) -> list[tuple[int, int]]:
    """As shop.orders.placement.split_evenly (kept here so the generator needs no app import)."""
    share, remainder = divmod(total_fen, len(member_ids))
    return [(m, share + (1 if i < remainder else 0)) for i, m in enumerate(member_ids)]


def pro_rata(amount: int, remaining: list[int]) -> list[int]:
    """As shop.refunds.pro_rata: largest remainder, ties to the earlier allocation."""
    total = sum(remaining)
    shares = [amount * r // total for r in remaining]
    fractions = [amount * r % total for r in remaining]
    missing = amount - sum(shares)
    for i in sorted(range(len(remaining)), key=lambda i: (-fractions[i], i))[:missing]:
        shares[i] += 1
    return shares


@dataclass
class SimOrder:
    id: int
    branch: int
    members: list[int]  # in the order given (allocation ids ascend in this order)
    alloc_ids: list[int]
    amounts: list[int]
    refunded: list[int]
    line_id: int
    product: dict
    quantity: int
    created_at: int
    expires_at: int
    request_hash: str
    status: str = "pending_payment"
    refunded_fen: int = 0
    refunded_quantity: int = 0
    paid_at: int | None = None
    closed_at: int | None = None
    refunds: int = 0


@dataclass
class Counters:
    orders: int = 0
    refused_attempts: int = 0  # cap_exceeded answers (the buyer retried without those members)
    dropped_orders: int = 0  # every chosen member was at the cap: no order
    kinds: dict[str, int] = field(default_factory=lambda: {k: 0 for k in MOVES})


class Province:
    """The generator. `await build(conn)` writes the tree; `await grow_to(conn, n)` the purchases."""

    def __init__(
        self,
        year: int,
        planned_entries: int = 1_000_000,
        seed: int = 20261122,
        now: datetime | None = None,
        branch_limit: int | None = None,
    ) -> None:
        self.year = year
        self.branch_limit = branch_limit  # orders only from the first n branches (a dense check)
        self.rng = random.Random(seed)
        self.cap = DEFAULT_CAP_FEN
        today = (now or datetime.now(UTC)).astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        start = datetime(year, 1, 2, 8, 30, tzinfo=SHANGHAI)
        end = min(datetime(year, 12, 20, tzinfo=SHANGHAI), today - timedelta(days=1))
        end = max(end, start + timedelta(days=30))
        self.clock = _us(start)
        self.year_end = _us(datetime(year + 1, 1, 1, tzinfo=SHANGHAI))
        # mean time between orders: the planned ledger spread over [start, end] (a little
        # margin: the number of entries an order makes is only known on average)
        self.gap_us = max(1, (_us(end) - _us(start)) * self.ENTRIES_PER_ORDER * 9 // (planned_entries * 10))
        self.unions: list[tuple] = []
        self.branches: list[int] = []
        self.branch_members: dict[int, list[int]] = {}  # active members only
        self.member_union: list[int] = [0]
        self.products: list[dict] = []
        # per member (index = member id): the year's budget row
        self.budget_id: list[int] = []
        self.held: list[int] = []
        self.spent: list[int] = []
        self.entries: list[int] = []
        self.last_hash: list[str] = []
        self.totals: dict[int, list[int]] = {}  # branch -> [id, spent_fen, orders]
        self.orders: dict[int, SimOrder] = {}
        self.events: list[tuple[int, int, str, int]] = []  # (time, tiebreak, what, order id)
        self.next = {"budget": 1, "seq": 1, "total": 1, "order": 1, "line": 1, "alloc": 1, "refund": 1, "tie": 0}
        self.counters = Counters()
        self.dirty_budgets: set[int] = set()
        self.dirty_totals: set[int] = set()
        self.dirty_orders: set[int] = set()
        self.new_refunds: list[tuple] = []
        # when a list: every budget call made, (kind, shares, order id, at µs), for
        # checking against the service (`replay_through_service`)
        self.journal: list[tuple] | None = None

    # about 2 entries per member of an order (hold, then capture or release), a few refunds
    ENTRIES_PER_ORDER = 17

    @property
    def ledger_entries(self) -> int:
        return self.next["seq"] - 1

    # --- the tree ---------------------------------------------------------------------

    async def build(self, conn: asyncpg.Connection) -> dict[str, int]:
        """Unions, members and targets by COPY; regions, suppliers and products through the
        catalog service (a handful; they need the union codes)."""
        rng = self.rng
        unions = []  # (id, code, name, level, parent, path)
        nid = iter(range(1, 10**9))
        province = next(nid)
        unions.append((province, "GD", "广东省总工会", "federation", None, f"/{province}/"))
        districts: list[tuple[int, str, str]] = []
        city_rows = []
        for code, name in CITIES:
            cid = next(nid)
            path = f"/{province}/{cid}/"
            unions.append((cid, code, f"{name}市总工会", "federation", province, path))
            city_rows.append((cid, code, name, path))
        for cid, code, name, path in city_rows:
            for d in range(1, DISTRICTS_PER_CITY + 1):
                did = next(nid)
                dpath = f"{path}{did}/"
                unions.append((did, f"{code}-D{d}", f"{name}市第{d}区总工会", "district", cid, dpath))
                districts.append((did, f"{code}-D{d}", dpath))
        # one branch right under each city federation (its own 机关工会), the rest spread
        # unevenly over the districts (between 5 and about 40 each)
        weights = [rng.uniform(0.25, 2.0) for _ in districts]
        rest = BRANCHES - len(city_rows)
        counts = [5 + int((rest - 5 * len(districts)) * w / sum(weights)) for w in weights]
        for i in range(rest - sum(counts)):
            counts[i % len(counts)] += 1
        branch_specs = [(cid, f"{code}-JG", f"{name}市总工会机关工会", path) for cid, code, name, path in city_rows]
        for (did, dcode, dpath), n in zip(districts, counts):
            branch_specs += [(did, f"{dcode}-{i:04d}", f"{dcode}第{i}基层工会", dpath) for i in range(1, n + 1)]
        for parent, code, name, ppath in branch_specs:
            bid = next(nid)
            unions.append((bid, code, name, "branch", parent, f"{ppath}{bid}/"))
            self.branches.append(bid)
        self.unions = unions

        members = []
        mid = 0
        for bid in self.branches:
            active_ids = []
            for i in range(1, MEMBERS_PER_BRANCH + 1):
                mid += 1
                active = rng.random() >= INACTIVE_SHARE
                members.append((mid, bid, f"M{i:04d}", f"职工{mid}", active))
                self.member_union.append(bid)
                if active:
                    active_ids.append(mid)
            self.branch_members[bid] = active_ids
        n = mid + 1
        self.budget_id = [0] * n
        self.held = [0] * n
        self.spent = [0] * n
        self.entries = [0] * n
        self.last_hash = [GENESIS_HASH] * n

        # targets: a branch aims at 30-70 % of its members' cap; each level above at the sum
        # of its children's and up to 10 % more
        members_of = {bid: MEMBERS_PER_BRANCH for bid in self.branches}
        target: dict[int, int] = {}
        children: dict[int, list[int]] = {}
        for u in unions:
            if u[4] is not None:
                children.setdefault(u[4], []).append(u[0])
        for u in reversed(unions):  # children have larger ids than their parents
            uid = u[0]
            if u[3] == "branch":
                target[uid] = round(members_of[uid] * self.cap * rng.uniform(0.3, 0.7), -4)
            else:
                target[uid] = round(sum(target[c] for c in children.get(uid, [])) * rng.uniform(1.0, 1.1), -4)
        targets = [(i + 1, u[0], self.year, int(target[u[0]])) for i, u in enumerate(unions)]

        await conn.copy_records_to_table("budget_union", records=unions, columns=["id", "code", "name", "level", "parent", "path"])
        await conn.copy_records_to_table("budget_member", records=members, columns=["id", "union", "member_no", "name", "active"])
        await conn.copy_records_to_table("budget_target", records=targets, columns=["id", "union", "year", "target_fen"])
        for table in ("budget_union", "budget_member", "budget_target"):
            await _reset_sequence(conn, table, "id")
        return {"unions": len(unions), "branches": len(self.branches), "members": len(members), "targets": len(targets)}

    async def add_catalog(self) -> None:
        """Regions paired with the city federations, a supplier each, listed products (service calls)."""
        from catalog import service as catalog
        from catalog.regions import ensure_region
        from catalog.suppliers import ensure_supplier
        from catalog.tables import Product

        for code, name, province, paired, supplier_name, products in REGIONS:
            await ensure_region(code, name, province, paired)
            supplier = await ensure_supplier(supplier_name, [code])
            for title, category, unit, price in products:
                pid = await catalog.ensure_product(supplier, title, code, category, unit, price, 1_000_000, f"{title}，产地直发。", "listed")
                await Product.update({Product.stock: 1_000_000}).where(Product.id == pid)
                self.products.append({"id": pid, "supplier": supplier, "region": code, "title": title, "price": price})

    # --- the purchases ----------------------------------------------------------------

    def _schedule(self, at: int, what: str, order_id: int) -> None:
        self.next["tie"] += 1
        heapq.heappush(self.events, (at, self.next["tie"], what, order_id))

    def _nextval(self, name: str) -> int:
        value = self.next[name]
        self.next[name] = value + 1
        return value

    def _append(self, kind: str, shares: list[tuple[int, int]], order_id: int, at_us: int, out: list) -> None:
        """budgets.ledger._append: ascending member id, one `at` for the transaction."""
        if self.journal is not None:
            self.journal.append((kind, list(shares), order_id, at_us))
        held_sign, spent_sign = MOVES[kind]
        at = _dt(at_us)
        year = self.year
        merged: dict[int, int] = {}
        for m, a in shares:
            merged[m] = merged.get(m, 0) + a
        for member, amount in sorted((m, a) for m, a in merged.items() if a > 0):
            held = self.held[member] + held_sign * amount
            spent = self.spent[member] + spent_sign * amount
            if held < 0 or spent < 0:
                raise AssertionError(f"{kind} of {amount} does not fit member {member}")
            prev = self.last_hash[member]
            digest = entry_hash(prev, member, year, order_id, kind, amount, at)
            seq = self.next["seq"]
            self.next["seq"] = seq + 1
            out.append((seq, member, year, order_id, kind, amount, at, prev, digest))
            self.held[member] = held
            self.spent[member] = spent
            self.entries[member] += 1
            self.last_hash[member] = digest
            self.dirty_budgets.add(member)
            self.counters.kinds[kind] += 1

    def _to_totals(self, shares: list[tuple[int, int]], sign: int, count_order: bool) -> None:
        """budgets.ledger._add_to_totals: the row is made on the branch's first capture."""
        per_union: dict[int, int] = {}
        for m, a in shares:
            u = self.member_union[m]
            per_union[u] = per_union.get(u, 0) + a
        for u in sorted(per_union):
            value = self._nextval("total")  # INSERT … ON CONFLICT DO NOTHING takes a value every time
            row = self.totals.get(u)
            if row is None:
                row = self.totals[u] = [value, 0, 0]
            row[1] += sign * per_union[u]
            row[2] += 1 if count_order else 0
            assert row[1] >= 0
            self.dirty_totals.add(u)

    def _pick_members(self, branch: int, k: int) -> list[int]:
        pool = self.branch_members[branch]
        if not pool:
            return []
        k = min(k, len(pool))
        if k > 30:
            return self.rng.sample(pool, k)
        chosen: dict[int, None] = {}
        rnd = self.rng.random
        tries = 0
        while len(chosen) < k and tries < 20 * k:  # some members are chosen far more often
            chosen[pool[int(len(pool) * rnd() ** 1.8)]] = None
            tries += 1
        return list(chosen)

    def _new_order(self, at: int, out: list) -> None:
        rng = self.rng
        branch = self.branches[rng.randrange(self.branch_limit or len(self.branches))]
        r = rng.random()
        k = 1 if r < 0.45 else rng.randint(2, 8) if r < 0.80 else rng.randint(9, 30) if r < 0.95 else rng.randint(31, 100)
        members = self._pick_members(branch, k)
        product = self.products[rng.randrange(len(self.products))]
        per_member = 1 if rng.random() < 0.75 else 2
        while members:
            quantity = per_member * len(members)
            shares = split_evenly(product["price"] * quantity, members)
            over = [m for m, a in shares if self.held[m] + self.spent[m] + a > self.cap]
            if not over:
                break
            # cap_exceeded: the transaction (order, line, allocations, budget rows) rolls back;
            # what it took from the sequences stays taken
            self.counters.refused_attempts += 1
            if self.journal is not None:
                self.journal.append(("refused", shares, self.next["order"], at))
            self.next["order"] += 1
            self.next["line"] += 1
            self.next["alloc"] += len(members)
            self.next["budget"] += len(members)
            members = [m for m in members if m not in set(over)]
        if not members:
            self.counters.dropped_orders += 1
            return
        oid = self.next["order"]
        self.next["order"] += 1
        alloc_ids = list(range(self.next["alloc"], self.next["alloc"] + len(members)))
        self.next["alloc"] += len(members)
        line_id = self.next["line"]
        self.next["line"] += 1
        body = {"lines": [{"product_id": product["id"], "quantity": quantity}], "members": members, "allocations": None}
        order = SimOrder(
            id=oid,
            branch=branch,
            members=members,
            alloc_ids=alloc_ids,
            amounts=[a for _, a in shares],
            refunded=[0] * len(members),
            line_id=line_id,
            product=product,
            quantity=quantity,
            created_at=at,
            expires_at=at + _us_delta(TRANSFER_HOLD),
            request_hash=hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest(),
        )
        self.orders[oid] = order
        self.dirty_orders.add(oid)
        self.counters.orders += 1
        # budgets.ledger.hold: budget rows made in ascending member id, then the entries
        for m in sorted(members):  # budgets.ledger._lock_budgets(create=True): one insert attempt each
            value = self._nextval("budget")
            if not self.budget_id[m]:
                self.budget_id[m] = value
        self._append("hold", shares, oid, at, out)
        r = rng.random()
        minute = 60_000_000
        if r < 0.88:
            self._schedule(at + rng.randint(10 * minute, 3 * 24 * 60 * minute), "pay", oid)
        elif r < 0.95:
            self._schedule(at + rng.randint(minute, 120 * minute), "cancel", oid)
        else:  # never paid: the expiry job releases it within a minute of expires_at
            self._schedule(order.expires_at + rng.randint(0, minute), "expire", oid)

    def _settle(self, what: str, order: SimOrder, at: int, out: list) -> None:
        rng = self.rng
        shares = list(zip(order.members, [a - r for a, r in zip(order.amounts, order.refunded)]))
        self.dirty_orders.add(order.id)
        if what == "pay":
            order.status, order.paid_at = "paid", at
            self._append("capture", shares, order.id, at, out)
            self._to_totals(shares, +1, count_order=True)
            if rng.random() < 0.06:
                self._schedule(at + rng.randint(1, 20) * 86_400_000_000 + rng.randint(0, 86_399_999_999), "refund", order.id)
        elif what in ("cancel", "expire"):
            order.status, order.closed_at = ("cancelled" if what == "cancel" else "expired"), at
            self._append("release", shares, order.id, at, out)
        elif what == "refund":
            left = order.quantity - order.refunded_quantity
            qty = left if rng.random() < 0.5 else rng.randint(1, left)
            amount = qty * order.product["price"]
            split = pro_rata(amount, [a - r for a, r in zip(order.amounts, order.refunded)])
            refund_shares = [(m, s) for m, s in zip(order.members, split) if s]
            for i, s in enumerate(split):
                order.refunded[i] += s
            self._append("refund", refund_shares, order.id, at, out)
            self._to_totals(refund_shares, -1, count_order=False)
            order.refunded_quantity += qty
            order.refunded_fen += amount
            order.status = "refunded" if order.refunded_quantity == order.quantity else "partially_refunded"
            order.refunds += 1
            rid = self.next["refund"]
            self.next["refund"] += 1
            key = f"order-{order.id}-refund-{order.refunds}"
            when = _dt(at)  # (its lines and shares, shop_refund_line and shop_refund_share, are not written)
            self.new_refunds.append((rid, order.id, amount, "owed", key, None, when, order.refunds, "lines", "transfer", "", when))
            if order.status == "partially_refunded" and rng.random() < 0.2:
                self._schedule(at + rng.randint(1, 10) * 86_400_000_000, "refund", order.id)

    def _run_until(self, target_entries: int, out: list, flush_at: int) -> None:
        """Simulate transactions until the ledger reaches `target_entries` or `out` holds
        `flush_at` records."""
        rng = self.rng
        while self.ledger_entries < target_entries and len(out) < flush_at:
            if self.events and self.events[0][0] <= self.clock:
                at, _, what, oid = heapq.heappop(self.events)
                self._settle(what, self.orders[oid], at, out)
            else:
                if self.clock >= self.year_end:
                    raise RuntimeError(f"the year is over at {self.ledger_entries:,} entries: plan more entries or more branches")
                self._new_order(self.clock, out)
                self.clock += int(rng.expovariate(1.0) * self.gap_us) + 1

    async def grow_to(self, conn: asyncpg.Connection, target_entries: int, chunk: int = 100_000) -> dict[str, Any]:
        """Carry the simulation on to at least `target_entries` ledger entries and write it."""
        began = time.perf_counter()
        sim_s = copy_s = 0.0
        while self.ledger_entries < target_entries:
            t = time.perf_counter()
            out: list[tuple] = []
            self._run_until(target_entries, out, chunk)
            sim_s += time.perf_counter() - t
            t = time.perf_counter()
            await conn.copy_records_to_table(
                "budget_ledger",
                records=out,
                columns=["seq", "member", "year", "order_id", "kind", "amount_fen", "at", "prev_hash", "hash"],
            )
            copy_s += time.perf_counter() - t
        t = time.perf_counter()
        await self._write_rows(conn)
        rows_s = time.perf_counter() - t
        return {
            "entries": self.ledger_entries,
            "seconds": time.perf_counter() - began,
            "simulate_s": sim_s,
            "copy_ledger_s": copy_s,
            "rows_s": rows_s,
        }

    async def _write_rows(self, conn: asyncpg.Connection) -> None:
        """The rows that changed since the last step: upserted by id (budgets, totals,
        orders, lines, allocations); refunds are new."""
        year = self.year
        budgets = [
            (self.budget_id[m], m, self.member_union[m], year, self.held[m], self.spent[m], self.entries[m], self.last_hash[m])
            for m in sorted(self.dirty_budgets, key=lambda m: self.budget_id[m])
        ]
        await _upsert(conn, "budget_member_budget", ["id", "member", "union", "year", "held_fen", "spent_fen", "entries", "last_hash"], budgets)
        totals = [(row[0], u, year, row[1], row[2]) for u, row in sorted(self.totals.items(), key=lambda i: i[1][0]) if u in self.dirty_totals]
        await _upsert(conn, "budget_union_year_total", ["id", "union", "year", "spent_fen", "orders"], totals)
        orders, lines, allocations = [], [], []
        for oid in sorted(self.dirty_orders):
            o = self.orders[oid]
            p = o.product
            orders.append((
                o.id, o.branch, None, year, o.status, sum(o.amounts), o.refunded_fen, f"gen-{o.id}", o.request_hash,
                _dt(o.created_at), _dt(o.expires_at), _dt(o.paid_at) if o.paid_at else None,
                _dt(o.closed_at) if o.closed_at else None, "transfer", f"XFBF{o.id:08d}", "", "", False,
            ))
            lines.append((o.line_id, o.id, p["id"], p["supplier"], p["region"], p["title"], o.quantity, p["price"], p["price"] * o.quantity, o.refunded_quantity))
            allocations += [(a, o.id, m, amt, ref) for a, m, amt, ref in zip(o.alloc_ids, o.members, o.amounts, o.refunded)]
        await _upsert(conn, "shop_order", [
            "id", "branch", "created_by", "year", "status", "total_fen", "refunded_fen", "idempotency_key", "request_hash",
            "created_at", "expires_at", "paid_at", "closed_at", "provider", "payment_reference", "payment_url", "payment_intent", "needs_refund",
        ], orders)
        await _upsert(conn, "shop_order_line", [
            "id", "order", "product", "supplier", "region_code", "title", "quantity", "unit_price_fen", "amount_fen", "refunded_quantity",
        ], lines)
        await _upsert(conn, "shop_allocation", ["id", "order", "member", "amount_fen", "refunded_fen"], allocations)
        if self.new_refunds:
            await conn.copy_records_to_table("shop_refund", records=self.new_refunds, columns=[
                "id", "order", "amount_fen", "status", "provider_reference", "created_by", "created_at", "seq", "kind",
                "provider", "error", "settled_at",
            ])
        # the sequences where the service's inserts would have left them (values taken by
        # conflicting or rolled-back inserts included)
        for table, column, counter in (
            ("budget_member_budget", "id", "budget"), ("budget_union_year_total", "id", "total"), ("budget_ledger", "seq", "seq"),
            ("shop_order", "id", "order"), ("shop_order_line", "id", "line"), ("shop_allocation", "id", "alloc"), ("shop_refund", "id", "refund"),
        ):
            await _set_sequence(conn, table, column, self.next[counter] - 1)
        self.dirty_budgets.clear()
        self.dirty_totals.clear()
        self.dirty_orders.clear()
        self.new_refunds = []

    def summary(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for o in self.orders.values():
            statuses[o.status] = statuses.get(o.status, 0) + 1
        members_used = sum(1 for b in self.budget_id if b)
        at_cap = sum(1 for m in range(1, len(self.held)) if self.budget_id[m] and self.held[m] + self.spent[m] >= self.cap * 0.9)
        return {
            "entries": self.ledger_entries,
            "kinds": dict(self.counters.kinds),
            "orders": self.counters.orders,
            "statuses": statuses,
            "budget_rows": members_used,
            "members_at_90pct_of_cap": at_cap,
            "max_used_fen": max((self.held[m] + self.spent[m] for m in range(1, len(self.held))), default=0),
            "cap_exceeded_retries": self.counters.refused_attempts,
            "orders_dropped_at_cap": self.counters.dropped_orders,
            "refunds": self.next["refund"] - 1,
            "branch_totals": len(self.totals),
            "spent_fen": sum(r[1] for r in self.totals.values()),
            "simulated_until": _dt(self.clock).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        }


def _us_delta(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


async def _reset_sequence(conn: asyncpg.Connection, table: str, column: str) -> None:
    await conn.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST((SELECT max(\"{column}\") FROM \"{table}\"), 1))"
    )


async def _set_sequence(conn: asyncpg.Connection, table: str, column: str, last: int) -> None:
    if last >= 1:
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), {last})")


async def _upsert(conn: asyncpg.Connection, table: str, columns: list[str], records: list[tuple]) -> None:
    """COPY into a temporary table, then INSERT … ON CONFLICT (id) DO UPDATE the rest."""
    if not records:
        return
    temp = f"tmp_{table}"
    cols = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != "id")
    async with conn.transaction():
        await conn.execute(f'CREATE TEMPORARY TABLE "{temp}" (LIKE "{table}" INCLUDING DEFAULTS) ON COMMIT DROP')
        await conn.copy_records_to_table(temp, records=records, columns=columns)
        await conn.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{temp}" ON CONFLICT (id) DO UPDATE SET {updates}')


async def replay_through_service(journal: list[tuple], year: int) -> int:
    """Make the same budget calls through budgets.ledger (hold, capture, release, refund;
    a refused hold must be refused with cap_exceeded). Returns the number of calls."""
    from budgets import ledger
    from common.errors import DomainError

    calls = {"hold": ledger.hold, "capture": ledger.capture, "release": ledger.release, "refund": ledger.refund}
    for kind, shares, order_id, at_us in journal:
        if kind == "refused":
            try:
                await ledger.hold(shares, year=year, order_id=order_id, at=_dt(at_us))
            except DomainError as exc:
                if exc.code != "cap_exceeded":
                    raise
            else:
                raise AssertionError(f"the service accepted a hold the generator refused: order {order_id}")
        else:
            await calls[kind](shares, year=year, order_id=order_id, at=_dt(at_us))
    return len(journal)


BUDGET_TABLES = {
    "budget_ledger": ("seq", "seq, member, year, order_id, kind, amount_fen, at, prev_hash, hash"),
    "budget_member_budget": ("id", 'id, member, "union", year, held_fen, spent_fen, entries, last_hash'),
    "budget_union_year_total": ("id", 'id, "union", year, spent_fen, orders'),
}


async def budget_rows(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    out = {}
    for table, (key, columns) in BUDGET_TABLES.items():
        out[table] = [tuple(r) for r in await conn.fetch(f'SELECT {columns} FROM "{table}" ORDER BY {key}')]
    return out
