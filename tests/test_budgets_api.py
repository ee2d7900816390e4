"""The budgets package over HTTP: the union tree, roles, members and their CSV import,
the cap policy, targets, a branch's budget, and the seeding helpers."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from budgets.tables import CapPolicy, Member, MemberBudget, Target, Union
from tests.conftest import ROOT, Api, assert_problem

SEEDS = ROOT / "seeds"


# --- helpers ----------------------------------------------------------------------


async def make_union(admin: Api, code: str, level: str, parent_code: str | None = None, name: str | None = None) -> dict:
    r = await admin.post(
        "/api/admin/unions", json={"code": code, "name": name or f"{code} 工会", "level": level, "parent_code": parent_code}
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
async def tree(admin) -> dict[str, dict]:
    """GD > GZ > GZ-TH > {GZ-TH-001, GZ-TH-002}; GZ > GZ-DIRECT (a branch right under a federation);
    GD > SZ > SZ-NS > SZ-NS-001."""
    unions = {}
    for code, level, parent in [
        ("GD", "federation", None),
        ("GZ", "federation", "GD"),
        ("GZ-TH", "district", "GZ"),
        ("GZ-TH-001", "branch", "GZ-TH"),
        ("GZ-TH-002", "branch", "GZ-TH"),
        ("GZ-DIRECT", "branch", "GZ"),
        ("SZ", "federation", "GD"),
        ("SZ-NS", "district", "SZ"),
        ("SZ-NS-001", "branch", "SZ-NS"),
    ]:
        unions[code] = await make_union(admin, code, level, parent)
    return unions


@pytest.fixture
async def buyer(make_user, tree) -> Api:
    return await make_user("buyer", union_id=tree["GZ-TH-001"]["id"])


@pytest.fixture
async def other_buyer(make_user, tree) -> Api:
    return await make_user("buyer", union_id=tree["SZ-NS-001"]["id"])


async def add_member(buyer: Api, member_no: str, name: str) -> dict:
    r = await buyer.post("/api/branch/members", json={"member_no": member_no, "name": name})
    assert r.status_code == 201, r.text
    return r.json()


async def import_csv(buyer: Api, data: bytes, content_type: str = "text/csv"):
    return await buyer.post("/api/branch/members/import", content=data, headers={"content-type": content_type})


async def members_in_db(union_id: int) -> list[tuple[str, str, bool]]:
    rows = await Member.select(Member.member_no, Member.name, Member.active).where(Member.union == union_id).order_by(Member.member_no)
    return [(r["member_no"], r["name"], bool(r["active"])) for r in rows]


def shanghai_year() -> int:
    return datetime.now(ZoneInfo("Asia/Shanghai")).year


# --- the union tree ---------------------------------------------------------------


async def test_union_tree_paths_children_and_list(admin, tree):
    gd, gz, th, b1, b2 = (tree[c] for c in ("GD", "GZ", "GZ-TH", "GZ-TH-001", "GZ-TH-002"))
    assert gd == {"id": gd["id"], "code": "GD", "name": "GD 工会", "level": "federation", "parent_id": None}
    assert b1 == {"id": b1["id"], "code": "GZ-TH-001", "name": "GZ-TH-001 工会", "level": "branch", "parent_id": th["id"]}
    assert tree["GZ-DIRECT"]["parent_id"] == gz["id"]

    paths = {r["code"]: r["path"] for r in await Union.select(Union.code, Union.path)}
    assert paths["GD"] == f"/{gd['id']}/"
    assert paths["GZ"] == f"/{gd['id']}/{gz['id']}/"
    assert paths["GZ-TH-001"] == f"/{gd['id']}/{gz['id']}/{th['id']}/{b1['id']}/"
    assert paths["SZ-NS-001"] == f"/{gd['id']}/{tree['SZ']['id']}/{tree['SZ-NS']['id']}/{tree['SZ-NS-001']['id']}/"

    r = await admin.get(f"/api/unions/{gz['id']}")
    assert r.status_code == 200
    assert r.json() == {**gz, "children": sorted([th["id"], tree["GZ-DIRECT"]["id"]])}
    assert (await admin.get(f"/api/unions/{th['id']}")).json()["children"] == [b1["id"], b2["id"]]
    assert (await admin.get(f"/api/unions/{b1['id']}")).json()["children"] == []
    assert_problem(await admin.get("/api/unions/999999"), 404, "not_found")

    r = await admin.get("/api/admin/unions")
    assert r.json()["total"] == len(tree)
    assert [u["code"] for u in r.json()["items"]] == list(tree)  # by id, the creation order
    r = await admin.get("/api/admin/unions", params={"level": "branch"})
    assert r.json()["total"] == 4 and {u["level"] for u in r.json()["items"]} == {"branch"}
    r = await admin.get("/api/admin/unions", params={"parent_id": th["id"]})
    assert [u["id"] for u in r.json()["items"]] == [b1["id"], b2["id"]]
    r = await admin.get("/api/admin/unions", params={"limit": 2, "offset": 3})
    assert r.json()["total"] == len(tree) and [u["code"] for u in r.json()["items"]] == ["GZ-TH-001", "GZ-TH-002"]
    for params, field in [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"offset": -1}, "offset"), ({"level": "city"}, "level")]:
        body = assert_problem(await admin.get("/api/admin/unions", params=params), 400, "validation_failed")
        assert body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    "level, parent, why",
    [
        ("district", None, "needs a parent"),
        ("branch", None, "needs a parent"),
        ("district", "GZ-TH", "district"),  # a district's parent is a federation
        ("federation", "GZ-TH", "district"),  # a federation's parent is a federation
        ("district", "GZ-TH-001", "no child"),  # a branch has no children
        ("branch", "GZ-TH-001", "no child"),
        ("federation", "GZ-TH-001", "no child"),
    ],
)
async def test_union_tree_rules(admin, tree, level, parent, why):
    before = await Union.count()
    r = await admin.post("/api/admin/unions", json={"code": "NEW-1", "name": "新工会", "level": level, "parent_code": parent})
    body = assert_problem(r, 400, "validation_failed")
    assert body["errors"][0]["field"] == "parent_code"
    assert why in body["errors"][0]["message"]
    assert await Union.count() == before


async def test_union_unknown_parent_is_404_and_duplicate_code_is_409(admin, tree):
    before = await Union.count()
    assert_problem(
        await admin.post("/api/admin/unions", json={"code": "X-1", "name": "x", "level": "branch", "parent_code": "NOPE"}),
        404,
        "not_found",
    )
    assert_problem(
        await admin.post("/api/admin/unions", json={"code": "GZ-TH", "name": "again", "level": "district", "parent_code": "GZ"}),
        409,
        "conflict",
    )
    assert await Union.count() == before
    # a federation may sit at the top or under a federation; a branch directly under a federation
    top = await make_union(admin, "HK", "federation")
    assert top["parent_id"] is None
    assert (await make_union(admin, "GZ-2", "branch", "GZ"))["parent_id"] == tree["GZ"]["id"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "gz-x", "name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"code": "GZ X", "name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"code": "A" * 33, "name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"code": "", "name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"code": 7, "name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"name": "n", "level": "branch", "parent_code": "GZ"}, "code"),
        ({"code": "GZ-X", "level": "branch", "parent_code": "GZ"}, "name"),
        ({"code": "GZ-X", "name": "", "level": "branch", "parent_code": "GZ"}, "name"),
        ({"code": "GZ-X", "name": "   ", "level": "branch", "parent_code": "GZ"}, "name"),
        ({"code": "GZ-X", "name": "工" * 101, "level": "branch", "parent_code": "GZ"}, "name"),
        ({"code": "GZ-X", "name": "n", "level": "city", "parent_code": "GZ"}, "level"),
        ({"code": "GZ-X", "name": "n", "level": "branch", "parent_code": 5}, "parent_code"),
        ({"code": "GZ-X", "name": "n", "level": "branch", "parent_code": "GZ", "budget": 1}, "budget"),
    ],
)
async def test_union_bad_bodies(admin, tree, body, field):
    before = await Union.count()
    problem = assert_problem(await admin.post("/api/admin/unions", json=body), 400, "validation_failed")
    assert problem["errors"][0]["field"] == field, problem
    assert await Union.count() == before


async def test_union_malformed_json(admin, tree):
    r = await admin.post("/api/admin/unions", content=b'{"code": "GZ-X",', headers={"content-type": "application/json"})
    body = assert_problem(r, 400, "validation_failed")
    assert body["errors"][0]["field"] == "body"


# --- roles ------------------------------------------------------------------------


@pytest.fixture
async def everyone(client, make_user, tree):
    from catalog.tables import Supplier

    supplier = (await Supplier.insert(Supplier(name="荔乡合作社")).returning(Supplier.id))[0]["id"]
    return {
        "anon": Api(client),
        "buyer": await make_user("buyer", union_id=tree["GZ-TH-001"]["id"]),
        "auditor": await make_user("auditor", union_id=tree["GZ"]["id"]),
        "supplier": await make_user("supplier", supplier_id=supplier),
    }


ADMIN_CALLS = [
    ("post", "/api/admin/unions", {"code": "Z", "name": "z", "level": "federation"}),
    ("get", "/api/admin/unions", None),
    ("put", "/api/admin/policy/2030", {"cap_fen": 1}),
    ("get", "/api/admin/policy/2030", None),
    ("put", "/api/admin/targets/{GZ}/2030", {"target_fen": 1}),
    ("get", "/api/admin/targets/{GZ}/2030", None),
]
BUYER_CALLS = [
    ("get", "/api/branch/members", None),
    ("post", "/api/branch/members", {"member_no": "M1", "name": "张三"}),
    ("patch", "/api/branch/members/{member}", {"name": "李四"}),
    ("post", "/api/branch/members/import", None),
    ("get", "/api/branch/budget", None),
]


async def _call(api: Api, method: str, url: str, body, tree, member_id: int):
    url = url.replace("{GZ}", str(tree["GZ"]["id"])).replace("{member}", str(member_id))
    if url.endswith("/import"):
        return await api.post(url, content="M9,王五\n".encode(), headers={"content-type": "text/csv"})
    if method in ("post", "put", "patch"):
        return await getattr(api, method)(url, json=body)
    return await getattr(api, method)(url)


async def test_every_route_group_refuses_anonymous_and_wrong_roles(admin, tree, everyone):
    member = await add_member(everyone["buyer"], "M0", "原名")
    anon, buyer, auditor, supplier = (everyone[k] for k in ("anon", "buyer", "auditor", "supplier"))
    for method, url, body in ADMIN_CALLS:
        assert_problem(await _call(anon, method, url, body, tree, member["id"]), 401, "unauthenticated")
        for who in (buyer, auditor, supplier):
            assert_problem(await _call(who, method, url, body, tree, member["id"]), 403, "forbidden")
    for method, url, body in BUYER_CALLS:
        assert_problem(await _call(anon, method, url, body, tree, member["id"]), 401, "unauthenticated")
        for who in (admin, auditor, supplier):
            assert_problem(await _call(who, method, url, body, tree, member["id"]), 403, "forbidden")
    # any authenticated role reads a union
    union_url = f"/api/unions/{tree['GZ']['id']}"
    assert_problem(await anon.get(union_url), 401, "unauthenticated")
    for who in (admin, buyer, auditor, supplier):
        assert (await who.get(union_url)).status_code == 200
    # a branch's budget: admin, auditor, buyer; never a supplier
    budget_url = f"/api/unions/{tree['GZ-TH-001']['id']}/budget"
    assert_problem(await anon.get(budget_url), 401, "unauthenticated")
    assert_problem(await supplier.get(budget_url), 403, "forbidden")
    # nothing the refused calls tried happened
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [("M0", "原名", True)]
    assert await Union.count() == len(tree)
    assert await CapPolicy.count() == 0 and await Target.count() == 0


# --- members ----------------------------------------------------------------------


async def test_members_create_list_filter_and_page(buyer, other_buyer, tree):
    created = await add_member(buyer, "GZ-0003", "  黄俊杰  ")
    assert created == {"id": created["id"], "member_no": "GZ-0003", "name": "黄俊杰", "active": True}
    await add_member(buyer, "GZ-0001", "陈志强")
    await add_member(buyer, "GZ-0002", "李晓婷")
    await add_member(buyer, "A_1", "Alice")
    await add_member(buyer, "AB1", "Bob")
    # the same member_no in another branch is another member
    await add_member(other_buyer, "GZ-0001", "别家的人")
    assert_problem(await buyer.post("/api/branch/members", json={"member_no": "GZ-0001", "name": "重复"}), 409, "conflict")

    r = await buyer.get("/api/branch/members")
    body = r.json()
    assert body["total"] == 5
    assert [m["member_no"] for m in body["items"]] == ["AB1", "A_1", "GZ-0001", "GZ-0002", "GZ-0003"]  # code point order
    assert set(body["items"][0]) == {"id", "member_no", "name", "active"}

    page = (await buyer.get("/api/branch/members", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 5 and [m["member_no"] for m in page["items"]] == ["A_1", "GZ-0001"]
    assert [m["name"] for m in (await buyer.get("/api/branch/members", params={"q": "晓婷"})).json()["items"]] == ["李晓婷"]
    assert (await buyer.get("/api/branch/members", params={"q": "gz-000"})).json()["total"] == 3  # case-insensitive
    # LIKE wildcards in q are taken literally
    assert [m["member_no"] for m in (await buyer.get("/api/branch/members", params={"q": "_"})).json()["items"]] == ["A_1"]
    assert (await buyer.get("/api/branch/members", params={"q": "%"})).json()["total"] == 0

    await buyer.patch(f"/api/branch/members/{created['id']}", json={"active": False})
    assert (await buyer.get("/api/branch/members", params={"active": "false"})).json()["items"] == [
        {**created, "active": False}
    ]
    assert (await buyer.get("/api/branch/members", params={"active": "true"})).json()["total"] == 4
    for params, field in [({"limit": 500}, "limit"), ({"active": "maybe"}, "active"), ({"q": "x" * 51}, "q")]:
        problem = assert_problem(await buyer.get("/api/branch/members", params=params), 400, "validation_failed")
        assert problem["errors"][0]["field"] == field


async def test_member_patch_and_scoping(buyer, other_buyer, tree):
    mine = await add_member(buyer, "M1", "张三")
    theirs = await add_member(other_buyer, "S1", "深圳人")

    r = await buyer.patch(f"/api/branch/members/{mine['id']}", json={"name": " 张三丰 "})
    assert r.status_code == 200 and r.json() == {**mine, "name": "张三丰"}
    r = await buyer.patch(f"/api/branch/members/{mine['id']}", json={"active": False})
    assert r.json() == {**mine, "name": "张三丰", "active": False}
    r = await buyer.patch(f"/api/branch/members/{mine['id']}", json={"active": True, "name": "张三"})
    assert r.json() == mine

    # another branch's member: forbidden and untouched, whichever field
    for patch in ({"name": "改名"}, {"active": False}):
        assert_problem(await buyer.patch(f"/api/branch/members/{theirs['id']}", json=patch), 403, "forbidden")
    assert await members_in_db(tree["SZ-NS-001"]["id"]) == [("S1", "深圳人", True)]
    assert_problem(await buyer.patch("/api/branch/members/999999", json={"name": "x"}), 404, "not_found")

    for patch, field in [
        ({}, "body"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "名" * 51}, "name"),
        ({"active": "false"}, "active"),
        ({"active": 0}, "active"),
        ({"member_no": "M2"}, "member_no"),
    ]:
        problem = assert_problem(await buyer.patch(f"/api/branch/members/{mine['id']}", json=patch), 400, "validation_failed")
        assert problem["errors"][0]["field"] == field, (patch, problem)
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [("M1", "张三", True)]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"member_no": "M 1", "name": "张三"}, "member_no"),
        ({"member_no": "工号1", "name": "张三"}, "member_no"),
        ({"member_no": "M" * 33, "name": "张三"}, "member_no"),
        ({"member_no": "", "name": "张三"}, "member_no"),
        ({"member_no": 12, "name": "张三"}, "member_no"),
        ({"name": "张三"}, "member_no"),
        ({"member_no": "M1"}, "name"),
        ({"member_no": "M1", "name": ""}, "name"),
        ({"member_no": "M1", "name": " \u3000 "}, "name"),
        ({"member_no": "M1", "name": "名" * 51}, "name"),
        ({"member_no": "M1", "name": "张\n三"}, "name"),
        ({"member_no": "M1", "name": ["张三"]}, "name"),
        ({"member_no": "M1", "name": "张三", "active": False}, "active"),
    ],
)
async def test_member_bad_bodies_change_nothing(buyer, tree, body, field):
    problem = assert_problem(await buyer.post("/api/branch/members", json=body), 400, "validation_failed")
    assert problem["errors"][0]["field"] == field, problem
    assert await Member.count() == 0


async def test_member_malformed_json(buyer, tree):
    r = await buyer.post("/api/branch/members", content=b"member_no=M1", headers={"content-type": "application/json"})
    assert_problem(r, 400, "validation_failed")
    assert await Member.count() == 0


async def test_buyer_of_a_district_cannot_add_members(admin, make_user, tree):
    district_buyer = await make_user("buyer", union_id=tree["GZ-TH"]["id"])
    assert_problem(await district_buyer.post("/api/branch/members", json={"member_no": "M1", "name": "x"}), 409, "invalid_state")
    assert await Member.count() == 0


# --- members: CSV import ----------------------------------------------------------


async def test_import_excel_file_with_bom_crlf_header_and_chinese_names(buyer, tree):
    data = "\ufeffmember_no,name\r\nGZ-0001,陈志强\r\nGZ-0002,\"李晓婷\"\r\nGZ-0003, 黄俊杰 \r\n\r\n\r\n".encode()
    r = await import_csv(buyer, data)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [
        ("GZ-0001", "陈志强", True),
        ("GZ-0002", "李晓婷", True),
        ("GZ-0003", "黄俊杰", True),
    ]
    assert (await buyer.get("/api/branch/members")).json()["total"] == 3


async def test_import_without_header_lf_and_application_csv(buyer, tree):
    data = "A1,张三\nA2,李四\n".encode()
    r = await import_csv(buyer, data, content_type="application/csv; charset=utf-8")
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [("A1", "张三", True), ("A2", "李四", True)]


async def test_import_updates_existing_member_no_and_reactivates(buyer, other_buyer, tree):
    kept = await add_member(buyer, "A1", "旧名字")
    await add_member(buyer, "A2", "李四")
    await add_member(buyer, "A3", "不在文件里")
    await buyer.patch(f"/api/branch/members/{kept['id']}", json={"active": False})
    await add_member(other_buyer, "A4", "别家的")  # another branch's member_no is not this branch's
    r = await import_csv(buyer, "member_no,name\nA1,新名字\nA2,李四\nA4,王五\n".encode())
    assert r.json() == {"created": 1, "updated": 1, "unchanged": 1, "errors": []}
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [
        ("A1", "新名字", True),
        ("A2", "李四", True),
        ("A3", "不在文件里", True),
        ("A4", "王五", True),
    ]
    assert (await Member.select(Member.id).where(Member.member_no == "A1").first())["id"] == kept["id"]
    assert await members_in_db(tree["SZ-NS-001"]["id"]) == [("A4", "别家的", True)]


async def test_import_with_bad_lines_changes_nothing_and_reports_every_line(buyer, tree):
    await add_member(buyer, "A1", "旧名字")
    before = await members_in_db(tree["GZ-TH-001"]["id"])
    lines = [
        "member_no,name",  # 1
        "A1,新名字",  # 2 fine (would update)
        "B 2,张三",  # 3 bad member_no
        "B3,李四",  # 4 fine
        "B4,",  # 5 empty name
        "B5," + "长" * 51,  # 6 name too long
        "",  # 7 blank: skipped
        "B3,重复",  # 8 duplicate of line 4
        "B9,王五,多一列",  # 9 three columns
        "B10",  # 10 one column
        "B11,赵六",  # 11 fine
    ]
    r = await import_csv(buyer, ("\r\n".join(lines) + "\r\n").encode())
    body = assert_problem(r, 400, "validation_failed")
    errors = body["errors"]
    assert [e["line"] for e in errors] == [3, 5, 6, 8, 9, 10]
    assert all(set(e) == {"line", "message"} for e in errors)
    by_line = {e["line"]: e["message"] for e in errors}
    assert "member_no" in by_line[3]
    assert "name" in by_line[5] and "empty" in by_line[5]
    assert "50" in by_line[6]
    assert "line 4" in by_line[8]
    assert "3" in by_line[9] and "1" in by_line[10]
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == before


@pytest.mark.parametrize(
    "data, lines",
    [
        (b"", [1]),
        (b"\xef\xbb\xbf\r\n\r\n", [1]),
        (b"member_no,name\r\n", [1]),  # a header and nothing else
        ("member_no,姓名\nA1,张三\n".encode(), [1]),  # a header, but not exactly ours
        ("name,member_no\n张三,A1\n".encode(), [1, 2]),  # and the swapped row after it
        ("工号,姓名\nA1,张三\n".encode(), [1]),  # not a header we know: line 1 is a bad row
        ("A1,张三\nA2,李四\n".encode("gbk"), [1, 2]),  # not UTF-8: every such line
        ("A1,张三\nA2,Li Si\nA3,王五\n".encode("gbk"), [1, 3]),
        ("A1,张三\nA2,\"李\n四\"\n".encode(), [2]),  # a control character inside a quoted name
        ("A1,张三\nA2,\"李四\n".encode(), [2]),  # an unclosed quote
        ("A1,张\x00三\n".encode(), [1]),
    ],
)
async def test_import_refusals(buyer, tree, data, lines):
    await add_member(buyer, "A1", "原名")
    body = assert_problem(await import_csv(buyer, data), 400, "validation_failed")
    assert [e["line"] for e in body["errors"]] == lines, body
    assert await members_in_db(tree["GZ-TH-001"]["id"]) == [("A1", "原名", True)]


async def test_import_row_limit(buyer, tree):
    rows = ["member_no,name"] + [f"M{i:05d},成员{i}" for i in range(20_001)]
    body = assert_problem(await import_csv(buyer, "\n".join(rows).encode()), 400, "validation_failed")
    assert body["errors"] == [{"line": 20_002, "message": "more than 20000 members in one file"}]
    assert await Member.count() == 0
    # exactly the limit, with names long enough that the file is over the app's usual 2 MiB
    data = "\n".join(rows[:-1]).replace("成员", "成" * 40).encode()
    assert len(data) > 2 * 1024 * 1024
    r = await import_csv(buyer, data)
    assert r.status_code == 200, r.text[:300]
    assert r.json() == {"created": 20_000, "updated": 0, "unchanged": 0, "errors": []}
    assert await Member.count() == 20_000


async def test_import_needs_csv_in_utf8(buyer, tree):
    for content_type in ("application/json", "text/plain", "multipart/form-data; boundary=x"):
        assert_problem(await import_csv(buyer, "A1,张三\n".encode(), content_type), 415, "unsupported_media_type")
    assert_problem(await import_csv(buyer, "A1,张三\n".encode("gbk"), "text/csv; charset=gbk"), 415, "unsupported_media_type")
    assert await Member.count() == 0


# --- the cap policy and targets -----------------------------------------------------


async def test_cap_policy_default_upsert_and_bad_values(admin, tree):
    assert (await admin.get("/api/admin/policy/2030")).json() == {"year": 2030, "cap_fen": 60000, "history": []}
    r = await admin.put("/api/admin/policy/2030", json={"cap_fen": 50000})
    assert r.status_code == 200 and r.json() == {"year": 2030, "cap_fen": 50000, "previous_cap_fen": 60000, "affected": []}
    r = await admin.put("/api/admin/policy/2030", json={"cap_fen": 0})
    assert r.json() == {"year": 2030, "cap_fen": 0, "previous_cap_fen": 50000, "affected": []}
    body = (await admin.get("/api/admin/policy/2030")).json()
    assert (body["year"], body["cap_fen"], len(body["history"])) == (2030, 0, 2)
    assert (await admin.get("/api/admin/policy/2031")).json() == {"year": 2031, "cap_fen": 60000, "history": []}
    assert await CapPolicy.count() == 1

    for body, field in [
        ({"cap_fen": -1}, "cap_fen"),
        ({"cap_fen": 10_000_001}, "cap_fen"),
        ({"cap_fen": 600.5}, "cap_fen"),
        ({"cap_fen": 60000.0}, "cap_fen"),
        ({"cap_fen": "60000"}, "cap_fen"),
        ({"cap_fen": True}, "cap_fen"),
        ({"cap_fen": None}, "cap_fen"),
        ({}, "cap_fen"),
        ({"cap_fen": 1, "year": 2030}, "year"),
    ]:
        problem = assert_problem(await admin.put("/api/admin/policy/2030", json=body), 400, "validation_failed")
        assert problem["errors"][0]["field"] == field, (body, problem)
    for year in ("1999", "2101", "20300"):
        problem = assert_problem(await admin.put(f"/api/admin/policy/{year}", json={"cap_fen": 1}), 400, "validation_failed")
        assert problem["errors"][0]["field"] == "year"
    assert (await CapPolicy.select(CapPolicy.year, CapPolicy.cap_fen)) == [{"year": 2030, "cap_fen": 0}]


async def test_targets_upsert_unknown_union_and_bad_values(admin, tree):
    gz = tree["GZ"]["id"]
    r = await admin.put(f"/api/admin/targets/{gz}/2026", json={"target_fen": 110_000_000_000})
    assert r.status_code == 200 and r.json() == {"union_id": gz, "year": 2026, "target_fen": 110_000_000_000}
    r = await admin.put(f"/api/admin/targets/{gz}/2026", json={"target_fen": 10**13})
    assert r.json()["target_fen"] == 10**13
    assert (await admin.get(f"/api/admin/targets/{gz}/2026")).json() == {"union_id": gz, "year": 2026, "target_fen": 10**13}
    assert (await admin.get(f"/api/admin/targets/{gz}/2027")).json()["target_fen"] is None
    assert await Target.count() == 1

    assert_problem(await admin.put("/api/admin/targets/999999/2026", json={"target_fen": 1}), 404, "not_found")
    assert_problem(await admin.get("/api/admin/targets/999999/2026"), 404, "not_found")
    for body in ({"target_fen": -1}, {"target_fen": 10**13 + 1}, {"target_fen": 1.5}, {"target_fen": "1"}, {}, {"target_fen": 1, "x": 1}):
        assert_problem(await admin.put(f"/api/admin/targets/{gz}/2026", json=body), 400, "validation_failed")
    assert_problem(await admin.put(f"/api/admin/targets/{gz}/1999", json={"target_fen": 1}), 400, "validation_failed")
    assert (await Target.select(Target.target_fen)) == [{"target_fen": 10**13}]


# --- a branch's budget ------------------------------------------------------------


async def _budget_row(member_id: int, union_id: int, year: int, spent: int, held: int) -> None:
    await MemberBudget.insert(
        MemberBudget(member=member_id, union=union_id, year=year, spent_fen=spent, held_fen=held, last_hash="0" * 64)
    )


async def test_branch_budget_figures(admin, buyer, tree):
    branch = tree["GZ-TH-001"]["id"]
    a = await add_member(buyer, "M1", "甲")
    b = await add_member(buyer, "M2", "乙")
    c = await add_member(buyer, "M3", "丙")  # inactive, spent this year: still listed
    d = await add_member(buyer, "M4", "丁")  # inactive, nothing this year: left out
    for m in (c, d):
        await buyer.patch(f"/api/branch/members/{m['id']}", json={"active": False})
    await _budget_row(a["id"], branch, 2031, spent=20000, held=5000)
    await _budget_row(c["id"], branch, 2031, spent=1000, held=0)
    await _budget_row(b["id"], branch, 2030, spent=60000, held=0)  # another year
    await _budget_row(d["id"], branch, 2030, spent=100, held=0)

    r = await buyer.get("/api/branch/budget", params={"year": 2031})
    assert r.status_code == 200
    assert r.json() == {
        "union_id": branch,
        "year": 2031,
        "cap_fen": 60000,
        "members": [
            {"member_id": a["id"], "member_no": "M1", "name": "甲", "active": True, "spent_fen": 20000, "held_fen": 5000, "remaining_fen": 35000},
            {"member_id": b["id"], "member_no": "M2", "name": "乙", "active": True, "spent_fen": 0, "held_fen": 0, "remaining_fen": 60000},
            {"member_id": c["id"], "member_no": "M3", "name": "丙", "active": False, "spent_fen": 1000, "held_fen": 0, "remaining_fen": 59000},
        ],
    }
    by_no = {m["member_no"]: m for m in (await buyer.get("/api/branch/budget", params={"year": 2030})).json()["members"]}
    assert by_no["M2"]["remaining_fen"] == 0 and by_no["M1"]["spent_fen"] == 0 and by_no["M4"]["spent_fen"] == 100

    # lowering the cap below what is used never changes the figures, only what remains
    await admin.put("/api/admin/policy/2031", json={"cap_fen": 22000})
    body = (await buyer.get("/api/branch/budget", params={"year": 2031})).json()
    assert body["cap_fen"] == 22000
    assert [(m["spent_fen"], m["held_fen"], m["remaining_fen"]) for m in body["members"]] == [(20000, 5000, 0), (0, 0, 22000), (1000, 0, 21000)]
    row = await MemberBudget.select(MemberBudget.spent_fen, MemberBudget.held_fen).where(
        (MemberBudget.member == a["id"]) & (MemberBudget.year == 2031)
    ).first()
    assert row == {"spent_fen": 20000, "held_fen": 5000}

    for year in ("1999", "2101", "x"):
        problem = assert_problem(await buyer.get("/api/branch/budget", params={"year": year}), 400, "validation_failed")
        assert problem["errors"][0]["field"] == "year"


async def test_branch_budget_year_defaults_to_shanghai_year(buyer, tree):
    year = shanghai_year()
    m = await add_member(buyer, "M1", "甲")
    await _budget_row(m["id"], tree["GZ-TH-001"]["id"], year, spent=12345, held=0)
    body = (await buyer.get("/api/branch/budget")).json()
    assert body["year"] == year
    assert body["members"][0]["spent_fen"] == 12345 and body["members"][0]["remaining_fen"] == 60000 - 12345


async def test_union_budget_scoping(admin, make_user, buyer, other_buyer, tree):
    branch = tree["GZ-TH-001"]["id"]
    m = await add_member(buyer, "M1", "甲")
    await _budget_row(m["id"], branch, 2031, spent=700, held=300)
    url = f"/api/unions/{branch}/budget?year=2031"
    expected = (await buyer.get("/api/branch/budget", params={"year": 2031})).json()
    assert expected["members"][0]["remaining_fen"] == 59000

    assert (await admin.get(url)).json() == expected
    for scope in ("GD", "GZ", "GZ-TH", "GZ-TH-001"):  # ancestors and the branch itself
        auditor = await make_user("auditor", union_id=tree[scope]["id"])
        r = await auditor.get(url)
        assert r.status_code == 200 and r.json() == expected, scope
    for scope in ("SZ", "GZ-TH-002", "GZ-DIRECT"):  # beside or below, not above
        auditor = await make_user("auditor", union_id=tree[scope]["id"])
        assert_problem(await auditor.get(url), 403, "forbidden")
    assert (await buyer.get(url)).json() == expected
    assert_problem(await other_buyer.get(url), 403, "forbidden")

    assert_problem(await admin.get(f"/api/unions/{tree['GZ-TH']['id']}/budget"), 409, "invalid_state")
    assert_problem(await admin.get("/api/unions/999999/budget"), 404, "not_found")
    auditor = await make_user("auditor", union_id=tree["GZ"]["id"])
    assert_problem(await auditor.get("/api/unions/999999/budget"), 403, "forbidden")


# --- seeding --------------------------------------------------------------------


async def test_seed_files_load_and_seeding_twice_creates_nothing(app):
    import budgets.members
    import budgets.targets
    import budgets.unions

    unions = json.loads((SEEDS / "unions.json").read_text())
    members = json.loads((SEEDS / "members.json").read_text())
    targets = json.loads((SEEDS / "targets.json").read_text())

    async def seed() -> dict[str, int]:
        ids = {}
        for u in unions:
            ids[u["code"]] = await budgets.unions.ensure_union(u["code"], u["name"], u["level"], u["parent_code"])
        for m in members:
            await budgets.members.ensure_member(ids[m["union_code"]], m["member_no"], m["name"])
        for t in targets:
            await budgets.targets.ensure_target(t["union_code"], t["year"], t["target_fen"])
        return ids

    first = await seed()
    counts = (await Union.count(), await Member.count(), await Target.count())
    assert counts == (len(unions), len(members), len(targets))
    assert await seed() == first
    assert (await Union.count(), await Member.count(), await Target.count()) == counts
    # every path is its parent's path plus its own id
    rows = {r["id"]: r for r in await Union.select(Union.id, Union.parent, Union.path)}
    for row in rows.values():
        parent_path = rows[row["parent"]]["path"] if row["parent"] else "/"
        assert row["path"] == f"{parent_path}{row['id']}/"
    # subtree helpers
    gz = await budgets.unions.union_by_code("GZ")
    branch = await budgets.unions.union_by_code(members[0]["union_code"])
    assert await budgets.unions.is_in_subtree(branch["id"], gz["id"]) is (branch["code"].startswith("GZ-"))
    assert await budgets.unions.is_in_subtree(gz["id"], branch["id"]) is False
    below_gz = Union.path.like(await budgets.unions.subtree_prefix(gz["id"]) + "%")
    assert {u["code"] for u in unions if u["code"] == "GZ" or u["code"].startswith("GZ-")} == {
        r["code"] for r in await Union.select(Union.code).where(below_gz)
    }
