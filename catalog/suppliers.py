"""Suppliers and the paired regions each is certified to sell from. `shop seed` calls
`ensure_supplier`; products ask `certified_region_id` where they may come from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from catalog.regions import region_ids
from catalog.schemas import SupplierIn, SupplierOut, check_page, clean_text, validated
from catalog.tables import Supplier, SupplierRegion
from common.errors import DomainError, invalid
from common.schemas import ID_MAX


async def _supplier_out(rows: list[dict[str, Any]]) -> list[SupplierOut]:
    ids = [row["id"] for row in rows]
    regions: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for r in await SupplierRegion.select(
            SupplierRegion.supplier, SupplierRegion.region.code.as_alias("code")
        ).where(SupplierRegion.supplier.is_in(ids)):
            regions[r["supplier"]].append(r["code"])
    return [SupplierOut(id=r["id"], name=r["name"], regions=sorted(regions[r["id"]])) for r in rows]


async def _certify(supplier_id: int, ids: Iterable[int]) -> None:
    for region_id in sorted(set(ids)):
        await SupplierRegion.insert(SupplierRegion(supplier=supplier_id, region=region_id)).on_conflict(
            action="DO NOTHING"
        )


async def create_supplier(name: str, region_codes: Sequence[str]) -> SupplierOut:
    """A new supplier certified for `region_codes` (all must exist); a name already taken is a `conflict`."""
    data = validated(SupplierIn, {"name": name, "regions": list(region_codes)})
    name = clean_text("name", data.name)
    if not data.regions:
        raise invalid("regions", "name at least one region the supplier is certified for")
    async with Supplier._meta.db.transaction():
        found = await region_ids(data.regions, "regions")
        inserted = await Supplier.insert(Supplier(name=name)).on_conflict(action="DO NOTHING").returning(Supplier.id)
        if not inserted:
            raise DomainError("conflict", f"supplier {name!r} exists already")
        await _certify(inserted[0]["id"], found.values())
    return SupplierOut(id=inserted[0]["id"], name=name, regions=sorted(found))


async def list_suppliers(limit: int = 50, offset: int = 0) -> tuple[list[SupplierOut], int]:
    check_page(limit, offset)
    rows = await Supplier.select(Supplier.id, Supplier.name).order_by(Supplier.id).limit(limit).offset(offset)
    return await _supplier_out(rows), await Supplier.count()


async def get_supplier(supplier_id: int) -> SupplierOut:
    row = None
    if 1 <= supplier_id <= ID_MAX:
        row = await Supplier.select(Supplier.id, Supplier.name).where(Supplier.id == supplier_id).first()
    if row is None:
        raise DomainError("not_found", f"supplier {supplier_id} does not exist")
    return (await _supplier_out([row]))[0]


async def certified_region_id(supplier_id: int, region_code: str) -> int:
    """The region's id if it exists (else 400) and the supplier is certified for it (else 403)."""
    region_id = (await region_ids([region_code], "region"))[region_code]
    if not await SupplierRegion.exists().where(
        (SupplierRegion.supplier == supplier_id) & (SupplierRegion.region == region_id)
    ):
        raise DomainError("forbidden", f"the supplier is not certified for region {region_code!r}")
    return region_id


async def ensure_supplier(name: str, region_codes: list[str]) -> int:
    """The supplier's id (by name), made if missing; certified regions missing from it are added
    (`[]` just finds, or makes, the supplier). Idempotent, for seeding."""
    data = validated(SupplierIn, {"name": name, "regions": list(region_codes)})
    name = clean_text("name", data.name)
    async with Supplier._meta.db.transaction():
        found = await region_ids(data.regions, "regions")
        row = await Supplier.select(Supplier.id).where(Supplier.name == name).first()
        if row is None:
            row = (await Supplier.insert(Supplier(name=name)).returning(Supplier.id))[0]
        await _certify(row["id"], found.values())
    return row["id"]
