"""Catalog domain logic: plain async functions over explicit arguments, no HTTP.

Paired regions, suppliers and the regions they are certified for, products with
their stock, and the listing review. The orders code calls `reserve_stock` and
`release_stock` inside its own transaction; `shop seed` calls the `ensure_*`
functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from piccolo.columns.combination import WhereRaw

from common.clock import local, utcnow
from common.errors import DomainError, invalid
from common.sql import for_update, is_postgres

from catalog.schemas import (
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPatch,
    RegionIn,
    RegionOut,
    SupplierIn,
    SupplierOut,
)
from catalog.tables import Product, ProductStatus, Region, RegionPairing, Supplier, SupplierRegion


# ---------------------------------------------------------------------------
# Reference data kept as data
# ---------------------------------------------------------------------------

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

S = ProductStatus

# The listing review, whole: action -> {from state: to state}. Nothing else moves a product.
TRANSITIONS: dict[str, dict[ProductStatus, ProductStatus]] = {
    "submit": {S.draft: S.pending_review, S.rejected: S.pending_review},  # supplier
    "approve": {S.pending_review: S.listed},  # admin
    "reject": {S.pending_review: S.rejected},  # admin
    "delist": {S.listed: S.delisted},  # admin
    "edit": {S.listed: S.pending_review},  # supplier changes what a listed product is
}

# Fields whose change on a listed product sends it back to review; the others
# (price and stock) take effect at once.
REVIEWED_FIELDS = frozenset({"title", "region", "description", "category", "unit"})

# States in which the supplier may still edit a product (a delisted one is frozen).
EDITABLE_STATES = frozenset({S.draft, S.pending_review, S.rejected, S.listed})

MAX_ID = 2**31 - 1
MAX_LIMIT = 200


def _db():
    return Product._meta.db


def validation_error(exc: msgspec.ValidationError) -> DomainError:
    """msgspec's message (`... - at `$.a[0]``) -> validation_failed naming the field (`a[0]`)."""
    message, _, path = str(exc).partition(" - at `$.")
    field = path.rstrip("`") if path else ""
    if not field and (named := re.search(r"field `([^`]*)`", message)):
        field = named[1]
    return invalid(field or "body", message)


def _validated(struct_type: type, values: dict[str, Any]) -> Any:
    """The same limits as the API bodies, for callers that do not come through HTTP (seeding)."""
    try:
        return msgspec.convert(values, struct_type)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from exc


def _clean_text(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid(field, "must not be blank")
    return value


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise invalid("category", f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")


def _check_status(status: str) -> None:
    try:
        ProductStatus(status)
    except ValueError:
        raise invalid("status", f"unknown status {status!r}; one of {', '.join(ProductStatus)}") from None


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise invalid("offset", "must not be negative")


def list_categories() -> list[CategoryOut]:
    return [CategoryOut(code=code, name=name) for code, name in CATEGORIES.items()]


# ---------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------


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
    data = _validated(RegionIn, {"code": code, "name": name, "province": province, "paired_with": list(paired_with)})
    name, province = _clean_text("name", data.name), _clean_text("province", data.province)
    async with _db().transaction():
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
    _check_page(limit, offset)
    rows = await Region.select(Region.id, Region.code, Region.name, Region.province).order_by(Region.code).limit(limit).offset(offset)
    return await _region_out(rows), await Region.count()


async def get_region(code: str) -> RegionOut:
    row = await Region.select(Region.id, Region.code, Region.name, Region.province).where(Region.code == code).first()
    if row is None:
        raise DomainError("not_found", f"region {code!r} does not exist")
    return (await _region_out([row]))[0]


async def _region_ids(codes: Iterable[str], field: str) -> dict[str, int]:
    codes = sorted(set(codes))
    rows = await Region.select(Region.id, Region.code).where(Region.code.is_in(codes)) if codes else []
    found = {r["code"]: r["id"] for r in rows}
    if missing := [c for c in codes if c not in found]:
        raise invalid(field, f"unknown region {', '.join(missing)}")
    return found


# ---------------------------------------------------------------------------
# Suppliers
# ---------------------------------------------------------------------------


async def _supplier_out(rows: list[dict[str, Any]]) -> list[SupplierOut]:
    ids = [row["id"] for row in rows]
    regions: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for r in await SupplierRegion.select(
            SupplierRegion.supplier, SupplierRegion.region.code.as_alias("code")
        ).where(SupplierRegion.supplier.is_in(ids)):
            regions[r["supplier"]].append(r["code"])
    return [SupplierOut(id=r["id"], name=r["name"], regions=sorted(regions[r["id"]])) for r in rows]


async def _certify(supplier_id: int, region_ids: Iterable[int]) -> None:
    for region_id in sorted(set(region_ids)):
        await SupplierRegion.insert(SupplierRegion(supplier=supplier_id, region=region_id)).on_conflict(
            action="DO NOTHING"
        )


async def create_supplier(name: str, region_codes: Sequence[str]) -> SupplierOut:
    """A new supplier certified for `region_codes` (all must exist); a name already taken is a `conflict`."""
    data = _validated(SupplierIn, {"name": name, "regions": list(region_codes)})
    name = _clean_text("name", data.name)
    if not data.regions:
        raise invalid("regions", "name at least one region the supplier is certified for")
    async with _db().transaction():
        region_ids = await _region_ids(data.regions, "regions")
        inserted = await Supplier.insert(Supplier(name=name)).on_conflict(action="DO NOTHING").returning(Supplier.id)
        if not inserted:
            raise DomainError("conflict", f"supplier {name!r} exists already")
        await _certify(inserted[0]["id"], region_ids.values())
    return SupplierOut(id=inserted[0]["id"], name=name, regions=sorted(region_ids))


async def list_suppliers(limit: int = 50, offset: int = 0) -> tuple[list[SupplierOut], int]:
    _check_page(limit, offset)
    rows = await Supplier.select(Supplier.id, Supplier.name).order_by(Supplier.id).limit(limit).offset(offset)
    return await _supplier_out(rows), await Supplier.count()


async def get_supplier(supplier_id: int) -> SupplierOut:
    row = None
    if 1 <= supplier_id <= MAX_ID:
        row = await Supplier.select(Supplier.id, Supplier.name).where(Supplier.id == supplier_id).first()
    if row is None:
        raise DomainError("not_found", f"supplier {supplier_id} does not exist")
    return (await _supplier_out([row]))[0]


async def _certified_region_id(supplier_id: int, region_code: str) -> int:
    """The region's id if it exists (else 400) and the supplier is certified for it (else 403)."""
    region_id = (await _region_ids([region_code], "region"))[region_code]
    if not await SupplierRegion.exists().where(
        (SupplierRegion.supplier == supplier_id) & (SupplierRegion.region == region_id)
    ):
        raise DomainError("forbidden", f"the supplier is not certified for region {region_code!r}")
    return region_id


# ---------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------

_PRODUCT_COLUMNS = (
    Product.id,
    Product.title,
    Product.region.code.as_alias("region_code"),
    Product.region.name.as_alias("region_name"),
    Product.category,
    Product.unit,
    Product.price_fen,
    Product.stock,
    Product.supplier.as_alias("supplier_id"),
    Product.supplier.name.as_alias("supplier_name"),
    Product.status,
    Product.description,
    Product.review_note,
    Product.created_at,
    Product.updated_at,
)


def _product_out(row: dict[str, Any]) -> ProductOut:
    return ProductOut(
        id=row["id"],
        title=row["title"],
        region=row["region_code"],
        region_name=row["region_name"],
        category=row["category"],
        category_name=CATEGORIES.get(row["category"], row["category"]),
        unit=row["unit"],
        price_fen=row["price_fen"],
        stock=row["stock"],
        supplier_id=row["supplier_id"],
        supplier_name=row["supplier_name"],
        status=row["status"],
        description=row["description"],
        review_note=row["review_note"],
        created_at=local(row["created_at"]),
        updated_at=local(row["updated_at"]),
    )


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_match(q: str) -> WhereRaw:
    """Title or description contains `q`: case-insensitive for Latin letters, any script matches as a substring."""
    op = "ILIKE" if _db().engine_type in ("postgres", "cockroach") else "LIKE"  # SQLite's LIKE ignores ASCII case
    table = Product._meta.tablename
    pattern = _like_pattern(q)
    return WhereRaw(
        f'("{table}"."title" {op} {{}} ESCAPE \'\\\' OR "{table}"."description" {op} {{}} ESCAPE \'\\\')',
        pattern,
        pattern,
    )


async def list_products(
    *,
    status: str | None = None,
    region: str | None = None,
    category: str | None = None,
    supplier_id: int | None = None,
    paired_with: Sequence[str] | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ProductOut], int]:
    """Products matching every given filter, by ascending id, and how many match in all.

    `paired_with` are union codes: products from any region paired with one of them."""
    _check_page(limit, offset)
    conditions: list[Any] = []
    if status is not None:
        _check_status(status)
        conditions.append(Product.status == status)
    if category is not None:
        _check_category(category)
        conditions.append(Product.category == category)
    if region is not None:
        conditions.append(Product.region.is_in(Region.select(Region.id).where(Region.code == region)))
    if supplier_id is not None:
        conditions.append(Product.supplier == supplier_id)
    if paired_with:
        conditions.append(
            Product.region.is_in(
                RegionPairing.select(RegionPairing.region).where(RegionPairing.union_code.is_in(sorted(set(paired_with))))
            )
        )
    if q is not None and (q := q.strip()):
        conditions.append(_text_match(q))
    rows_query = Product.select(*_PRODUCT_COLUMNS).order_by(Product.id).limit(limit).offset(offset)
    count_query = Product.count()
    if conditions:
        rows_query = rows_query.where(*conditions)
        count_query = count_query.where(*conditions)
    rows = await rows_query
    return [_product_out(r) for r in rows], await count_query


async def _product_row(product_id: int) -> dict[str, Any] | None:
    if not 1 <= product_id <= MAX_ID:
        return None
    return await Product.select(*_PRODUCT_COLUMNS).where(Product.id == product_id).first()


async def get_product(product_id: int, *, listed_only: bool = False, supplier_id: int | None = None) -> ProductOut:
    """One product. `listed_only`: the public view (anything else is not found).
    `supplier_id`: the supplier's view (another supplier's product is forbidden)."""
    row = await _product_row(product_id)
    if row is None or (listed_only and row["status"] != ProductStatus.listed):
        raise DomainError("not_found", f"product {product_id} does not exist")
    if supplier_id is not None and row["supplier_id"] != supplier_id:
        raise DomainError("forbidden", f"product {product_id} belongs to another supplier")
    return _product_out(row)


async def _locked_product(product_id: int) -> dict[str, Any]:
    """The product's own columns, its row locked until the transaction ends (PostgreSQL;
    SQLite's IMMEDIATE transaction already holds the write lock)."""
    row = None
    if 1 <= product_id <= MAX_ID:
        query = Product.select(
            Product.id, Product.supplier, Product.status, Product.title, Product.region, Product.category,
            Product.unit, Product.price_fen, Product.stock, Product.description,
        ).where(Product.id == product_id)  # fmt: skip
        row = await for_update(query, Product).first()
    if row is None:
        raise DomainError("not_found", f"product {product_id} does not exist")
    return row


async def _own_product(supplier_id: int, product_id: int) -> dict[str, Any]:
    row = await _locked_product(product_id)
    if row["supplier"] != supplier_id:
        raise DomainError("forbidden", f"product {product_id} belongs to another supplier")
    return row


async def create_product(
    supplier_id: int,
    *,
    title: str,
    region: str,
    category: str,
    unit: str,
    price_fen: int,
    stock: int,
    description: str = "",
    status: str = ProductStatus.draft,
) -> ProductOut:
    """A new product of the supplier, from a region it is certified for; a draft unless told otherwise."""
    data = _validated(
        ProductIn,
        dict(title=title, region=region, category=category, unit=unit, price_fen=price_fen, stock=stock, description=description),
    )
    _check_status(status)
    _check_category(data.category)
    title, unit = _clean_text("title", data.title), _clean_text("unit", data.unit)
    async with _db().transaction():
        region_id = await _certified_region_id(supplier_id, data.region)
        now = utcnow()
        inserted = await Product.insert(
            Product(
                supplier=supplier_id,
                region=region_id,
                title=title,
                category=data.category,
                unit=unit,
                price_fen=data.price_fen,
                stock=data.stock,
                description=data.description.strip(),
                status=status,
                created_at=now,
                updated_at=now,
            )
        ).returning(Product.id)
    return await get_product(inserted[0]["id"])


async def update_product(supplier_id: int, product_id: int, changes: dict[str, Any]) -> ProductOut:
    """Change any of the product's fields (at least one). Changing what a listed product is
    (anything but price and stock) sends it back to review; price and stock change at once.
    A delisted product is frozen (`invalid_state`)."""
    patch = _validated(ProductPatch, dict(changes))
    given = patch.changes()
    if not given:
        raise invalid("body", "give at least one field to change")
    new: dict[str, Any] = {}
    for field in ("title", "unit"):
        if field in given:
            new[field] = _clean_text(field, given[field])
    if "category" in given:
        _check_category(given["category"])
        new["category"] = given["category"]
    if "description" in given:
        new["description"] = given["description"].strip()
    for field in ("price_fen", "stock"):
        if field in given:
            new[field] = given[field]
    async with _db().transaction():
        row = await _own_product(supplier_id, product_id)
        if row["status"] not in EDITABLE_STATES:
            raise DomainError("invalid_state", f"product {product_id} is {row['status']} and cannot be edited", product_status=row["status"])
        if "region" in given:
            new["region"] = await _certified_region_id(supplier_id, given["region"])
        changed = {field: value for field, value in new.items() if value != row[field]}
        values: dict[Any, Any] = {getattr(Product, field): value for field, value in changed.items()}
        if REVIEWED_FIELDS.intersection(changed) and row["status"] in TRANSITIONS["edit"]:
            values[Product.status] = TRANSITIONS["edit"][row["status"]]
        if values:
            values[Product.updated_at] = utcnow()
            await Product.update(values).where(Product.id == product_id)
    return await get_product(product_id)


async def _transition(product_id: int, action: str, *, supplier_id: int | None = None, note: str | None = None) -> ProductOut:
    """Move a product along TRANSITIONS[action]; a move the table does not allow is `invalid_state`."""
    async with _db().transaction():
        if supplier_id is not None:
            status = (await _own_product(supplier_id, product_id))["status"]
        else:
            status = (await _locked_product(product_id))["status"]
        target = TRANSITIONS[action].get(status)
        if target is None:
            raise DomainError(
                "invalid_state",
                f"cannot {action} a product that is {status}",
                product_status=status,
                allowed_from=sorted(TRANSITIONS[action]),
            )
        values: dict[Any, Any] = {Product.status: target, Product.updated_at: utcnow()}
        if note is not None:
            values[Product.review_note] = note
        # The status in the WHERE keeps the move a compare-and-set even without the row lock.
        moved = await (
            Product.update(values)
            .where((Product.id == product_id) & (Product.status == status))
            .returning(Product.id)
        )
        if not moved:
            raise DomainError("invalid_state", f"product {product_id} changed meanwhile; try again")
    return await get_product(product_id)


async def submit_product(supplier_id: int, product_id: int) -> ProductOut:
    """The supplier asks for review (from draft or rejected)."""
    return await _transition(product_id, "submit", supplier_id=supplier_id)


async def approve_product(product_id: int) -> ProductOut:
    return await _transition(product_id, "approve", note="")


async def reject_product(product_id: int, reason: str) -> ProductOut:
    return await _transition(product_id, "reject", note=_clean_text("reason", reason)[:200])


async def delist_product(product_id: int, reason: str) -> ProductOut:
    return await _transition(product_id, "delist", note=_clean_text("reason", reason)[:200])


# ---------------------------------------------------------------------------
# Stock, for the orders code (inside its transaction)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservedLine:
    product_id: int
    quantity: int
    unit_price_fen: int
    amount_fen: int
    supplier_id: int
    region_code: str
    title: str


def _check_lines(lines: Sequence[tuple[int, int]]) -> dict[int, int]:
    wanted: dict[int, int] = {}
    for product_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise DomainError("validation_failed", f"quantity of product {product_id} must be at least 1",
                               errors=[{"field": "quantity", "message": "must be at least 1"}])  # fmt: skip
        if product_id in wanted:
            raise DomainError("validation_failed", f"product {product_id} appears twice",
                               errors=[{"field": "product_id", "message": "appears twice"}])  # fmt: skip
        wanted[product_id] = quantity
    return wanted


async def reserve_stock(lines: list[tuple[int, int]]) -> list[ReservedLine]:
    """Take `quantity` of each product off its stock, all or nothing, at today's price.

    Runs inside the caller's transaction when there is one. Rows are locked (PostgreSQL)
    and decremented in ascending product id. Refusals: `not_found` (products: [ids]),
    `not_listed` (products: [{product_id, status}]), `out_of_stock` (products:
    [{product_id, requested, available}], every short product)."""
    wanted = _check_lines(lines)
    if not wanted:
        return []
    ids = sorted(wanted)
    async with _db().transaction():
        rows: dict[int, dict[str, Any]] = {}
        if in_range := [i for i in ids if 1 <= i <= MAX_ID]:
            query = (
                Product.select(
                    Product.id, Product.status, Product.stock, Product.price_fen, Product.supplier,
                    Product.title, Product.region.code.as_alias("region_code"),
                )
                .where(Product.id.is_in(in_range))
                .order_by(Product.id)
            )  # fmt: skip
            if is_postgres(Product):  # the product rows only, not the joined region's
                query = query.lock_rows(of=(Product,))
            rows = {r["id"]: r for r in await query}
        if missing := [i for i in ids if i not in rows]:
            raise DomainError("not_found", f"no such product: {', '.join(map(str, missing))}", products=missing)
        if unlisted := [{"product_id": i, "status": rows[i]["status"]} for i in ids if rows[i]["status"] != ProductStatus.listed]:
            raise DomainError("not_listed", "some products are not on sale", products=unlisted)
        short = [
            {"product_id": i, "requested": wanted[i], "available": rows[i]["stock"]}
            for i in ids
            if rows[i]["stock"] < wanted[i]
        ]
        if short:
            raise DomainError("out_of_stock", "not enough stock", products=short)
        for i in ids:
            q = wanted[i]
            done = await (
                Product.update({Product.stock: Product.stock - q})
                .where((Product.id == i) & (Product.stock >= q) & (Product.status == ProductStatus.listed))
                .returning(Product.id)
            )
            if not done:  # only if someone got past the lock; the caller's transaction rolls back
                now = await Product.select(Product.stock, Product.status).where(Product.id == i).first()
                if now["status"] != ProductStatus.listed:
                    raise DomainError("not_listed", "some products are not on sale", products=[{"product_id": i, "status": now["status"]}])
                raise DomainError("out_of_stock", "not enough stock", products=[{"product_id": i, "requested": q, "available": now["stock"]}])
    return [
        ReservedLine(
            product_id=pid,
            quantity=q,
            unit_price_fen=rows[pid]["price_fen"],
            amount_fen=rows[pid]["price_fen"] * q,
            supplier_id=rows[pid]["supplier"],
            region_code=rows[pid]["region_code"],
            title=rows[pid]["title"],
        )
        for pid, q in wanted.items()
    ]


async def release_stock(lines: list[tuple[int, int]]) -> None:
    """Put reserved stock back (cancelled, expired or refunded orders), whatever the product's
    state is now. Inside the caller's transaction when there is one; ascending product id."""
    wanted = _check_lines(lines)
    async with _db().transaction():
        for product_id in sorted(i for i in wanted if 1 <= i <= MAX_ID):
            await Product.update({Product.stock: Product.stock + wanted[product_id]}).where(Product.id == product_id)


# ---------------------------------------------------------------------------
# Seeding (idempotent: a second run finds everything and changes nothing)
# ---------------------------------------------------------------------------


async def ensure_region(code: str, name: str, province: str, paired_with: list[str]) -> int:
    """The region's id, made if missing; pairings missing from it are added."""
    data = _validated(RegionIn, {"code": code, "name": name, "province": province, "paired_with": list(paired_with)})
    async with _db().transaction():
        row = await Region.select(Region.id).where(Region.code == data.code).first()
        if row is None:
            inserted = await Region.insert(
                Region(code=data.code, name=_clean_text("name", data.name), province=_clean_text("province", data.province))
            ).returning(Region.id)
            row = inserted[0]
        await _add_pairings(row["id"], data.paired_with)
    return row["id"]


async def ensure_supplier(name: str, region_codes: list[str]) -> int:
    """The supplier's id (by name), made if missing; certified regions missing from it are added
    (`[]` just finds, or makes, the supplier)."""
    data = _validated(SupplierIn, {"name": name, "regions": list(region_codes)})
    name = _clean_text("name", data.name)
    async with _db().transaction():
        region_ids = await _region_ids(data.regions, "regions")
        row = await Supplier.select(Supplier.id).where(Supplier.name == name).first()
        if row is None:
            row = (await Supplier.insert(Supplier(name=name)).returning(Supplier.id))[0]
        await _certify(row["id"], region_ids.values())
    return row["id"]


async def ensure_product(
    supplier_id: int,
    title: str,
    region_code: str,
    category: str,
    unit: str,
    price_fen: int,
    stock: int,
    description: str,
    status: str,
) -> int:
    """The product's id (by supplier and title), made with `status` if missing; an existing
    one is left as it is (its stock may have been sold since)."""
    async with _db().transaction():
        if not await Supplier.exists().where(Supplier.id == supplier_id):
            raise DomainError("not_found", f"supplier {supplier_id} does not exist")
        row = await Product.select(Product.id).where((Product.supplier == supplier_id) & (Product.title == title.strip())).first()
        if row is not None:
            return row["id"]
        created = await create_product(
            supplier_id,
            title=title,
            region=region_code,
            category=category,
            unit=unit,
            price_fen=price_fen,
            stock=stock,
            description=description,
            status=status,
        )
    return created.id
