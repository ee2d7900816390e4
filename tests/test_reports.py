"""Reports and audit over HTTP, each figure compared with sums computed independently
from the orders this test placed, paid, refunded and cancelled."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook

from budgets.tables import LedgerEntry, MemberBudget
from catalog import service as catalog
from catalog.regions import ensure_region
from catalog.suppliers import ensure_supplier
from catalog.tables import Product
from tests.conftest import assert_problem
from tests.world import add_members, add_union

YEAR = 2026


def walk(nodes):
    for node in nodes:
        yield node
        yield from walk(node["children"])


@pytest.fixture
async def province(app, admin, make_user):
    """Two city federations; 广州 has two districts and three branches, 茂名 one branch."""
    original = app.state.clock
    app.state.clock = lambda: datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)
    gz = await add_union("GZ", "federation", None)
    th = await add_union("GZ-TH", "district", gz)
    yx = await add_union("GZ-YX", "district", gz)
    b1 = await add_union("GZ-TH-001", "branch", th)
    b2 = await add_union("GZ-TH-002", "branch", th)
    b3 = await add_union("GZ-YX-001", "branch", yx)
    mm = await add_union("MM", "federation", None)
    m1 = await add_union("MM-001", "branch", mm)
    await ensure_region("bijie", "毕节", "贵州", ["GZ"])
    await ensure_region("maoming", "茂名", "广东", ["GZ", "MM"])
    s1 = await ensure_supplier("毕节茶业", ["bijie"])
    s2 = await ensure_supplier("茂名果业", ["maoming"])
    products = [
        await catalog.ensure_product(s1, "高山绿茶", "bijie", "tea", "盒", 3999, 10_000, "茶", "listed"),
        await catalog.ensure_product(s1, "苦荞米", "bijie", "grain_oil", "袋", 1250, 10_000, "米", "listed"),
        await catalog.ensure_product(s2, "白糖罂荔枝", "maoming", "fruit", "箱", 8801, 10_000, "荔枝", "listed"),
    ]
    branches = {b1: await add_members(b1, "A", 6), b2: await add_members(b2, "B", 4), b3: await add_members(b3, "C", 3), m1: await add_members(m1, "D", 5)}
    buyers = {b: await make_user("buyer", union_id=b) for b in branches}
    prices = {p["id"]: p["price_fen"] for p in await Product.select(Product.id, Product.price_fen)}
    regions = {products[0]: "bijie", products[1]: "bijie", products[2]: "maoming"}
    rng = random.Random(7)
    placed = []
    for i in range(24):
        branch = rng.choice(list(branches))
        picks = rng.sample(products, rng.randint(1, 2))
        lines = [{"product_id": p, "quantity": rng.randint(1, 2)} for p in picks]
        who = rng.sample(branches[branch], rng.randint(1, len(branches[branch])))
        r = await buyers[branch].post("/api/orders", json={"lines": lines, "members": who}, headers={"Idempotency-Key": f"o{i}"})
        assert r.status_code == 201, r.text
        placed.append({"order": r.json(), "branch": branch})
    paid, refunded = [], {}
    for n, item in enumerate(placed):
        order = item["order"]
        if n % 6 == 5:  # left pending
            continue
        if n % 6 == 4:
            assert (await buyers[item["branch"]].post(f"/api/orders/{order['id']}/cancel")).status_code == 200
            continue
        r = await admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
        assert r.status_code == 200, r.text
        paid.append(item)
        if n % 6 == 1:  # refund one unit of the first line
            line = order["lines"][0]
            r = await admin.post(f"/api/orders/{order['id']}/refund", json={"lines": [{"line_id": line["id"], "quantity": 1}]})
            assert r.status_code == 200, r.text
            refunded[order["id"]] = {line["id"]: 1}
    targets = {gz: 5_000_00, th: 2_000_00, b1: 1_000_00, mm: 3_000_00}
    for union_id, target in targets.items():
        r = await admin.put(f"/api/admin/targets/{union_id}/{YEAR}", json={"target_fen": target})
        assert r.status_code == 200, r.text
    yield {
        "unions": {"GZ": gz, "GZ-TH": th, "GZ-YX": yx, "GZ-TH-001": b1, "GZ-TH-002": b2, "GZ-YX-001": b3, "MM": mm, "MM-001": m1},
        "parents": {th: gz, yx: gz, b1: th, b2: th, b3: yx, m1: mm},
        "branches": branches,
        "buyers": buyers,
        "paid": paid,
        "refunded": refunded,
        "targets": targets,
        "prices": prices,
        "regions": regions,
        "auditor_th": await make_user("auditor", union_id=th),
        "auditor_gz": await make_user("auditor", union_id=gz),
        "supplier": await make_user("supplier", supplier_id=s1),
    }
    app.state.clock = original


def net_of_line(line, refunded):
    return line["unit_price_fen"] * (line["quantity"] - refunded.get(line["id"], 0))


def expected_spent_by_branch(p):
    spent = {u: 0 for u in p["unions"].values()}
    for item in p["paid"]:
        refunded = p["refunded"].get(item["order"]["id"], {})
        spent[item["branch"]] += sum(net_of_line(l, refunded) for l in item["order"]["lines"])
    return spent


def subtree(p, union_id):
    out = {union_id}
    changed = True
    while changed:
        changed = False
        for child, parent in p["parents"].items():
            if parent in out and child not in out:
                out.add(child)
                changed = True
    return out


async def test_targets_report_matches_the_orders(province, admin):
    p = province
    spent = expected_spent_by_branch(p)
    assert sum(spent.values()) > 0
    r = await admin.get(f"/api/reports/targets?year={YEAR}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cap_fen"] == 60000
    # two top-level federations: one tree whose root stands for the whole shop
    assert body["union_id"] is None and body["year"] == YEAR
    assert {n["code"] for n in body["children"]} == {"GZ", "MM"}
    assert body["spent_fen"] == sum(spent.values())
    assert body["members"] == sum(len(m) for m in p["branches"].values())
    nodes = {n["union_id"]: n for n in walk(body["children"])}
    for union_id in p["unions"].values():
        below = subtree(p, union_id)
        node = nodes[union_id]
        members = sum(len(p["branches"].get(u, [])) for u in below)
        assert node["members"] == members
        assert node["cap_capacity_fen"] == members * 60000
        assert node["spent_fen"] == sum(spent[u] for u in below)
        assert node["target_fen"] == p["targets"].get(union_id)
        if union_id in p["targets"]:
            assert node["progress"] == pytest.approx(node["spent_fen"] / p["targets"][union_id], abs=1e-6)
        else:
            assert node["progress"] is None
        # a parent is exactly its own plus its children's
        assert node["spent_fen"] == spent[union_id] + sum(c["spent_fen"] for c in node["children"])
    # a union inside the caller's scope, and the auditor's own scope
    sub = (await admin.get(f"/api/reports/targets?year={YEAR}&union_id={p['unions']['GZ-TH']}")).json()
    assert sub["code"] == "GZ-TH" and sub["spent_fen"] == nodes[p["unions"]["GZ-TH"]]["spent_fen"]
    mine = (await p["auditor_th"].get(f"/api/reports/targets?year={YEAR}")).json()
    assert mine["code"] == "GZ-TH"
    assert {c["code"] for c in mine["children"]} == {"GZ-TH-001", "GZ-TH-002"}
    # a year with nothing bought
    empty = (await admin.get("/api/reports/targets?year=2025")).json()
    assert all(n["spent_fen"] == 0 for n in walk([empty]))


async def test_regions_report_matches_the_orders(province, admin):
    p = province
    expected: dict[str, list] = {}
    for item in p["paid"]:
        refunded = p["refunded"].get(item["order"]["id"], {})
        for line in item["order"]["lines"]:
            entry = expected.setdefault(line["region"], [0, set()])
            entry[0] += net_of_line(line, refunded)
            entry[1].add(item["order"]["id"])
    body = (await admin.get(f"/api/reports/regions?year={YEAR}")).json()
    got = {r["region"]: (r["spent_fen"], r["orders"]) for r in body}
    assert got == {k: (v[0], len(v[1])) for k, v in expected.items()}
    for region in body:
        assert sum(f["spent_fen"] for f in region["by_federation"]) == region["spent_fen"]
    # an auditor of 广州 sees only 广州's purchases
    gz_branches = subtree(p, p["unions"]["GZ"])
    gz_total = sum(
        net_of_line(l, p["refunded"].get(i["order"]["id"], {})) for i in p["paid"] if i["branch"] in gz_branches for l in i["order"]["lines"]
    )
    mine = (await p["auditor_gz"].get(f"/api/reports/regions?year={YEAR}")).json()
    assert sum(r["spent_fen"] for r in mine) == gz_total
    assert all(f["code"] == "GZ" for r in mine for f in r["by_federation"])


async def test_distribution_lists(province, admin):
    p = province
    item = p["paid"][0]
    order = item["order"]
    rows = (await admin.get(f"/api/orders/{order['id']}/distribution")).json()
    assert [(r["member_id"], r["amount_fen"]) for r in rows] == [(a["member_id"], a["amount_fen"]) for a in order["allocations"]]
    assert sum(r["amount_fen"] - r["refunded_fen"] for r in rows) == sum(
        net_of_line(l, p["refunded"].get(order["id"], {})) for l in order["lines"]
    )
    buyer = p["buyers"][item["branch"]]
    assert (await buyer.get(f"/api/orders/{order['id']}/distribution")).status_code == 200
    other = next(b for branch, b in p["buyers"].items() if branch != item["branch"])
    assert_problem(await other.get(f"/api/orders/{order['id']}/distribution"), 403, "forbidden")
    assert_problem(await p["supplier"].get(f"/api/orders/{order['id']}/distribution"), 403, "forbidden")
    # branch-year list: every paid order of every member, amounts adding up per member
    branch = item["branch"]
    listing = (await p["buyers"][branch].get(f"/api/reports/distribution?year={YEAR}")).json()
    expected: dict[int, int] = {}
    for paid in p["paid"]:
        if paid["branch"] == branch:
            for a in paid["order"]["allocations"]:
                expected[a["member_id"]] = expected.get(a["member_id"], 0) + a["amount_fen"]
    assert {m["member_id"]: m["amount_fen"] for m in listing} == expected
    assert all(sum(o["amount_fen"] for o in m["orders"]) == m["amount_fen"] for m in listing)


async def test_audit_members_and_ledger(province, admin):
    p = province
    budgets_rows = await MemberBudget.select().where(MemberBudget.year == YEAR)
    used = {r["member"]: r["spent_fen"] + r["held_fen"] for r in budgets_rows}
    threshold = sorted(used.values())[len(used) // 2] / 60000
    body = (await admin.get(f"/api/audit/members?year={YEAR}&min_ratio={threshold}&limit=200")).json()
    assert {m["member_id"] for m in body["items"]} == {m for m, u in used.items() if u >= threshold * 60000 - 1e-9}
    assert body["total"] == len(body["items"])
    assert [m["spent_fen"] + m["held_fen"] for m in body["items"]] == sorted((m["spent_fen"] + m["held_fen"] for m in body["items"]), reverse=True)
    th_members = {m for b in subtree(p, p["unions"]["GZ-TH"]) for m in p["branches"].get(b, [])}
    scoped = (await p["auditor_th"].get(f"/api/audit/members?year={YEAR}&min_ratio=0")).json()["items"]
    assert {m["member_id"] for m in scoped} <= th_members and scoped
    # the ledger, filtered and paged, in the order written
    order = p["paid"][0]["order"]
    entries = (await admin.get(f"/api/audit/ledger?order_id={order['id']}")).json()
    kinds = sorted(e["kind"] for e in entries["items"])
    assert kinds.count("hold") == len(order["allocations"]) and kinds.count("capture") == len(order["allocations"])
    assert entries["total"] == await LedgerEntry.count().where(LedgerEntry.order_id == order["id"])
    page1 = (await admin.get("/api/audit/ledger?limit=5")).json()
    page2 = (await admin.get("/api/audit/ledger?limit=5&offset=5")).json()
    seqs = [e["seq"] for e in page1["items"] + page2["items"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10 and page1["total"] == await LedgerEntry.count()
    mine = (await p["auditor_th"].get("/api/audit/ledger?limit=200")).json()
    assert mine["items"] and {e["member_id"] for e in mine["items"]} <= th_members
    verify = (await admin.get(f"/api/audit/ledger/verify?year={YEAR}")).json()
    assert verify["ok"] is True and verify["problems"] == [] and verify["entries"] == await LedgerEntry.count()
    scoped_verify = (await p["auditor_th"].get("/api/audit/ledger/verify")).json()
    assert scoped_verify["ok"] and scoped_verify["entries"] == mine["total"]


async def test_verify_names_the_broken_entry(province, admin):
    victim = await LedgerEntry.select().order_by(LedgerEntry.seq).offset(3).first()
    await LedgerEntry.update({LedgerEntry.amount_fen: victim["amount_fen"] + 1}).where(LedgerEntry.seq == victim["seq"])
    body = (await admin.get("/api/audit/ledger/verify")).json()
    assert body["ok"] is False
    assert {"member_id": victim["member"], "year": victim["year"], "seq": victim["seq"], "problem": "hash does not match the entry's content"} in body["problems"]


async def test_exports_csv_and_xlsx(province, admin):
    r = await admin.get(f"/api/reports/targets?year={YEAR}&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["工会", "代码", "层级"]
    json_nodes = {n["code"]: n for n in walk([(await admin.get(f"/api/reports/targets?year={YEAR}")).json()])}
    gz_row = next(row for row in rows if row[1] == "GZ")
    assert gz_row[5] == f"{json_nodes['GZ']['spent_fen'] // 100}.{json_nodes['GZ']['spent_fen'] % 100:02d}"
    r = await admin.get(f"/api/reports/targets?year={YEAR}&format=xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet["A1"].value == "工会" and sheet["F1"].value == "消费帮扶金额(元)"
    gz = next(row for row in sheet.iter_rows(min_row=2) if row[1].value == "GZ")
    assert round(gz[5].value * 100) == json_nodes["GZ"]["spent_fen"] and "0.00" in gz[5].number_format
    for url in ("/api/reports/regions", "/api/reports/distribution", "/api/audit/members?min_ratio=0", "/api/audit/ledger", "/api/audit/ledger/verify"):
        sep = "&" if "?" in url else "?"
        for fmt, kind in (("csv", "text/csv"), ("xlsx", "spreadsheetml")):
            r = await admin.get(f"{url}{sep}format={fmt}")
            assert r.status_code == 200 and kind in r.headers["content-type"], (url, fmt, r.text[:200])
    assert_problem(await admin.get("/api/reports/targets?format=pdf"), 400, "validation_failed")


async def test_report_scoping(province, admin, anon):
    p = province
    assert_problem(await anon.get("/api/reports/targets"), 401, "unauthenticated")
    assert_problem(await p["supplier"].get("/api/reports/targets"), 403, "forbidden")
    assert_problem(await p["auditor_th"].get(f"/api/reports/targets?union_id={p['unions']['MM']}"), 403, "forbidden")
    assert_problem(await p["auditor_th"].get(f"/api/audit/ledger?union_id={p['unions']['GZ']}"), 403, "forbidden")
    buyer = p["buyers"][p["unions"]["GZ-TH-001"]]
    assert_problem(await buyer.get(f"/api/reports/targets?union_id={p['unions']['GZ-TH-002']}"), 403, "forbidden")
    own = (await buyer.get("/api/reports/targets")).json()
    assert own["code"] == "GZ-TH-001" and own["children"] == []
    assert_problem(await admin.get("/api/reports/targets?union_id=999999"), 404, "not_found")
    # an auditor reads and never writes
    auditor = p["auditor_gz"]
    assert_problem(await auditor.put(f"/api/admin/targets/{p['unions']['GZ']}/{YEAR}", json={"target_fen": 1}), 403, "forbidden")
    assert_problem(await auditor.post("/api/orders", json={"lines": [], "members": []}, headers={"Idempotency-Key": "x"}), 403, "forbidden")
    assert_problem(await auditor.post(f"/api/admin/orders/{p['paid'][0]['order']['id']}/confirm-transfer", json={"reference": "x"}), 403, "forbidden")


async def _every_item(client, url: str) -> list[dict]:
    """A JSON list, page after page."""
    sep = "&" if "?" in url else "?"
    items: list[dict] = []
    while True:
        body = (await client.get(f"{url}{sep}limit=200&offset={len(items)}")).json()
        items += body["items"]
        if len(items) >= body["total"]:
            return items


@pytest.mark.parametrize(
    "url, key, column",
    [("/api/audit/ledger", "seq", 0), (f"/api/audit/members?year={YEAR}&min_ratio=0", "member_no", 1), ("/api/reports/distribution", None, 1)],
)
async def test_an_export_larger_than_a_batch_is_whole(province, admin, monkeypatch, url, key, column):
    from common import sql

    monkeypatch.setattr(sql, "BATCH", 3)  # read 3 rows a query: the export spans many batches
    if key is None:  # the distribution list: a row per member and order
        expected = [m["member_no"] for m in (await admin.get(f"{url}?year={YEAR}")).json() for _ in m["orders"]]
        url = f"{url}?year={YEAR}"
    else:
        expected = [str(i[key]) for i in await _every_item(admin, url)]
    assert len(expected) > 3 * sql.BATCH
    sep = "&" if "?" in url else "?"
    r = await admin.get(f"{url}{sep}format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[column] for row in rows[1:]] == expected
    r = await admin.get(f"{url}{sep}format=xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold
    assert [str(row[column]) for row in sheet.iter_rows(min_row=2, values_only=True)] == expected
