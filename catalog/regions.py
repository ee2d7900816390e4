"""Paired regions (对口帮扶协作地区) and the unions each is paired with, and the product
categories, kept as data. `shop seed` calls `ensure_region`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from catalog.schemas import CategoryOut, RegionIn, RegionOut, check_page, clean_text, validated
from catalog.tables import Region, RegionPairing
from common.errors import DomainError, invalid

CATEGORIES: dict[str, str] = {
    "fruit": "水果",
    "tea": "茶叶",
    "grain_oil": "粮油",
    "dried": "干货山珍",
    "aquatic": "水产",
    "meat_egg": "肉禽蛋",
    "herbal": "南药滋补",
    "snack": "休闲食品",
    "other": "其他",
}


def list_categories() -> list[CategoryOut]:
    return [CategoryOut(code=code, name=name) for code, name in CATEGORIES.items()]


def check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise invalid("category", f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")


async def _region_out(rows: list[dict[str, Any]]) -> list[RegionOut]:
    ids = [row["id"] for row in rows]
    pairings: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for p in await RegionPairing.select(RegionPairing.region, RegionPairing.union_code).where(
            RegionPairing.region.is_in(ids)
        ):
            pairings[p["region"]].append(p["union_code"])
    return [
        RegionOut(code=r["code"], name=r["name"], province=r["province"], paired_with=sorted(pairings[r["id"]]))
        for r in rows
    ]


async def _add_pairings(region_id: int, union_codes: Iterable[str]) -> None:
    for code in sorted(set(union_codes)):
        await RegionPairing.insert(RegionPairing(region=region_id, union_code=code)).on_conflict(action="DO NOTHING")


async def create_region(code: str, name: str, province: str, paired_with: Sequence[str]) -> RegionOut:
    """A new paired region; a code already taken is a `conflict`."""
    data = validated(RegionIn, {"code": code, "name": name, "province": province, "paired_with": list(paired_with)})
    name, province = clean_text("name", data.name), clean_text("province", data.province)
    async with Region._meta.db.transaction():
        inserted = await (
            Region.insert(Region(code=data.code, name=name, province=province))
            .on_conflict(action="DO NOTHING")
            .returning(Region.id)
        )
        if not inserted:
            raise DomainError("conflict", f"region {data.code!r} exists already")
        await _add_pairings(inserted[0]["id"], data.paired_with)
    return (await _region_out([{"id": inserted[0]["id"], "code": data.code, "name": name, "province": province}]))[0]


async def list_regions(limit: int = 50, offset: int = 0) -> tuple[list[RegionOut], int]:
    check_page(limit, offset)
    rows = await Region.select(Region.id, Region.code, Region.name, Region.province).order_by(Region.code).limit(limit).offset(offset)
    return await _region_out(rows), await Region.count()


async def get_region(code: str) -> RegionOut:
    row = await Region.select(Region.id, Region.code, Region.name, Region.province).where(Region.code == code).first()
    if row is None:
        raise DomainError("not_found", f"region {code!r} does not exist")
    return (await _region_out([row]))[0]


async def region_ids(codes: Iterable[str], field: str) -> dict[str, int]:
    """Each code's region id; a code naming no region is a `validation_failed` of `field`."""
    codes = sorted(set(codes))
    rows = await Region.select(Region.id, Region.code).where(Region.code.is_in(codes)) if codes else []
    found = {r["code"]: r["id"] for r in rows}
    if missing := [c for c in codes if c not in found]:
        raise invalid(field, f"unknown region {', '.join(missing)}")
    return found


async def ensure_region(code: str, name: str, province: str, paired_with: list[str]) -> int:
    """The region's id, made if missing; pairings missing from it are added (idempotent, for seeding)."""
    data = validated(RegionIn, {"code": code, "name": name, "province": province, "paired_with": list(paired_with)})
    async with Region._meta.db.transaction():
        row = await Region.select(Region.id).where(Region.code == data.code).first()
        if row is None:
            inserted = await Region.insert(
                Region(code=data.code, name=clean_text("name", data.name), province=clean_text("province", data.province))
            ).returning(Region.id)
            row = inserted[0]
        await _add_pairings(row["id"], data.paired_with)
    return row["id"]
