"""A small shop to test orders in: a federation with a district and two branches,
members, a paired region, a supplier with listed and unlisted products, and accounts."""

from __future__ import annotations

from dataclasses import dataclass, field

from budgets.tables import Member, Union
from catalog import service as catalog
from catalog.regions import ensure_region
from catalog.suppliers import ensure_supplier


async def add_union(code: str, level: str, parent: int | None) -> int:
    union = Union(code=code, name=f"{code}工会", level=level, parent=parent, path="")
    await union.save()
    parent_path = "/"
    if parent is not None:
        parent_path = (await Union.select(Union.path).where(Union.id == parent).first())["path"]
    await Union.update({Union.path: f"{parent_path}{union.id}/"}).where(Union.id == union.id)
    return union.id


async def add_members(branch: int, prefix: str, n: int, active: bool = True) -> list[int]:
    ids = []
    for i in range(n):
        m = Member(union=branch, member_no=f"{prefix}{i:04d}", name=f"职工{prefix}{i}", active=active)
        await m.save()
        ids.append(m.id)
    return ids


@dataclass
class World:
    federation: int
    district: int
    branch: int
    other_branch: int
    members: list[int]
    other_members: list[int]
    supplier: int
    other_supplier: int
    products: dict[str, int] = field(default_factory=dict)
    buyer: object = None
    other_buyer: object = None
    supplier_user: object = None
    other_supplier_user: object = None
    auditor: object = None
    admin: object = None


async def build_world(make_user=None, admin=None, members: int = 5) -> World:
    fed = await add_union("GZ", "federation", None)
    district = await add_union("GZ-TH", "district", fed)
    branch = await add_union("GZ-TH-001", "branch", district)
    other_fed = await add_union("MM", "federation", None)
    other_branch = await add_union("MM-001", "branch", other_fed)
    await ensure_region("bijie", "毕节", "贵州", ["GZ"])
    await ensure_region("maoming", "茂名", "广东", ["MM"])
    supplier = await ensure_supplier("毕节农业合作社", ["bijie"])
    other_supplier = await ensure_supplier("茂名荔枝合作社", ["maoming"])
    w = World(
        federation=fed,
        district=district,
        branch=branch,
        other_branch=other_branch,
        members=await add_members(branch, "A", members),
        other_members=await add_members(other_branch, "B", 2),
        supplier=supplier,
        other_supplier=other_supplier,
    )
    specs = {
        "tea": (supplier, "毕节高山绿茶 250克", "bijie", "tea", 10000, 100, "listed"),
        "rice": (supplier, "威宁苦荞米 5斤", "bijie", "grain_oil", 2501, 5, "listed"),
        "draft": (supplier, "赫章核桃 1斤", "bijie", "dried", 3000, 50, "draft"),
        "lychee": (other_supplier, "茂名白糖罂荔枝 5斤", "maoming", "fruit", 8800, 40, "listed"),
    }
    for key, (sup, title, region, category, price, stock, status) in specs.items():
        w.products[key] = await catalog.ensure_product(sup, title, region, category, "盒", price, stock, f"{title}，产地直发。", status)
    if make_user is not None:
        w.admin = admin
        w.buyer = await make_user("buyer", union_id=branch)
        w.other_buyer = await make_user("buyer", union_id=other_branch)
        w.supplier_user = await make_user("supplier", supplier_id=supplier)
        w.other_supplier_user = await make_user("supplier", supplier_id=other_supplier)
        w.auditor = await make_user("auditor", union_id=district)
    return w
