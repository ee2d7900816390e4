"""Products and their listing review: plain async functions over explicit arguments, no HTTP.

A supplier creates and edits its products (from regions it is certified for); the review
moves them between `ProductStatus`es along `TRANSITIONS` and nothing else does, recording
who did it (`ProductReview`, read by `list_reviews`). `shop seed` calls `ensure_product`.
Regions and categories are in `catalog.regions`, suppliers in `catalog.suppliers`, stock
for orders in `catalog.stock`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any


from catalog.images import PAGE_WITH_IMAGES_SQL, grouped_images, images_of
from catalog.regions import CATEGORIES, check_category
from catalog.schemas import MAX_STOCK, ImageOut, ProductIn, ProductOut, ProductPatch, ReviewOut, check_page, clean_text, validated
from catalog.suppliers import certified_region_id
from catalog.tables import Product, ProductReview, ProductStatus, ReviewAction, Supplier
from common.clock import local, utcnow
from common.errors import DomainError, invalid
from common.schemas import ID_MAX
from common.sql import fetch, for_update, like_pattern, sql_one_of

S = ProductStatus

# The listing review, whole: action -> {from state: to state}. Nothing else moves a product.
TRANSITIONS: dict[str, dict[ProductStatus, ProductStatus]] = {
    "submit": {S.draft: S.pending_review, S.rejected: S.pending_review},  # supplier
    "approve": {S.pending_review: S.listed},  # admin
    "reject": {S.pending_review: S.rejected},  # admin
    "delist": {S.listed: S.delisted},  # admin
    "edit": {S.listed: S.pending_review},  # supplier changes what a listed product is
}

# How `_transition` records each move in `ProductReview` (the supplier's edit is not a review).
R = ReviewAction
RECORDED = {"submit": R.submitted, "approve": R.approved, "reject": R.rejected, "delist": R.delisted}

# The admin's decisions; each is told, inside its transaction, to every listener (the shop
# registers one that notifies the supplier), as {product_id, supplier_id, title, action,
# reason, at}. `catalog` knows nothing of notifications; the listener is the seam.
DECISIONS = frozenset({"approve", "reject", "delist"})
REVIEW_LISTENERS: list[Callable[[dict[str, Any]], Awaitable[None]]] = []

# Fields whose change on a listed product sends it back to review; the others
# (price and stock) take effect at once.
REVIEWED_FIELDS = frozenset({"title", "region", "description", "category", "unit"})

# States in which the supplier may still edit a product (a delisted one is frozen).
EDITABLE_STATES = frozenset({S.draft, S.pending_review, S.rejected, S.listed})


def _check_status(status: str) -> None:
    try:
        ProductStatus(status)
    except ValueError:
        raise invalid("status", f"unknown status {status!r}; one of {', '.join(ProductStatus)}") from None


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


def _product_out(row: dict[str, Any], images: list[ImageOut]) -> ProductOut:
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
        images=images,
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
    check_page(limit, offset)
    # raw SQL, built per call from fixed fragments: the query builder cost more CPU than the
    # query on this, the busiest read (README "Performance against the floors"); every value is a parameter
    where: list[str] = []
    args: list[Any] = []
    if status is not None:
        _check_status(status)
        where.append("p.status = {}")
        args.append(status)
    if category is not None:
        check_category(category)
        where.append("p.category = {}")
        args.append(category)
    if region is not None:
        where.append("p.region IN (SELECT id FROM catalog_region WHERE code = {})")
        args.append(region)
    if supplier_id is not None:
        where.append("p.supplier = {}")
        args.append(supplier_id)
    if paired_with:
        codes = sorted(set(paired_with))
        one_of, values = sql_one_of(Product, codes)
        where.append(f"p.region IN (SELECT region FROM catalog_region_pairing WHERE union_code {one_of})")
        args += values
    if q is not None and (q := q.strip()):
        # title or description contains `q`, by the same SQL on both databases: `q` lower-cased and
        # `!`-escaped (`common.sql.like_pattern`) against the lower-cased column. ASCII letters match
        # in either case, Chinese (uncased) as a plain substring, `%`, `_`, `!` and `\\` literally.
        # Capitals outside ASCII are lower-cased in `q` too; PostgreSQL's LOWER folds the column's
        # alike, SQLite's folds ASCII only, so there only their lower-case spelling is found.
        where.append("(LOWER(p.title) LIKE {} ESCAPE '!' OR LOWER(p.description) LIKE {} ESCAPE '!')")
        args += [like_pattern(q)] * 2
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    # the rows, how many match in all (a window count) and the page's photos in one
    # statement; past the last page there is no row to carry the count, and only then is it
    # counted on its own
    # limit and offset written in (checked integers): as parameters, PostgreSQL planned the
    # statement anew on every run, which cost more than running it
    page = f"{_LIST_SQL}{condition} ORDER BY p.id LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = await fetch(Product, PAGE_WITH_IMAGES_SQL.format(page=page), *args)
    if rows:
        total = rows[0]["full_count"]
    else:
        total = (await Product.raw(f"SELECT count(*) AS n FROM catalog_product p{condition}", *args))[0]["n"]
    return [_product_out(row, images) for row, images in grouped_images(rows)], total


_LIST_SQL = (
    "SELECT p.id, p.title, r.code AS region_code, r.name AS region_name, p.category, p.unit, p.price_fen, p.stock, "
    "p.supplier AS supplier_id, s.name AS supplier_name, p.status, p.description, p.review_note, p.created_at, "
    "p.updated_at, count(*) OVER () AS full_count FROM catalog_product p "
    "LEFT JOIN catalog_region r ON r.id = p.region LEFT JOIN catalog_supplier s ON s.id = p.supplier"
)


async def _product_row(product_id: int) -> dict[str, Any] | None:
    if not 1 <= product_id <= ID_MAX:
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
    return _product_out(row, (await images_of([product_id])).get(product_id, []))


async def _locked_product(product_id: int) -> dict[str, Any]:
    """The product's own columns, its row locked until the transaction ends (PostgreSQL;
    SQLite's IMMEDIATE transaction already holds the write lock)."""
    row = None
    if 1 <= product_id <= ID_MAX:
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


async def lock_editable(supplier_id: int, product_id: int) -> dict[str, Any]:
    """In the caller's transaction: the supplier's own product, its row locked, in a state in
    which the supplier may still change it (a delisted one is frozen: `invalid_state`)."""
    row = await _own_product(supplier_id, product_id)
    if row["status"] not in EDITABLE_STATES:
        raise DomainError("invalid_state", f"product {product_id} is {row['status']} and cannot be edited", product_status=row["status"])
    return row


async def changed_by_supplier(row: dict[str, Any], *, actor_id: int | None, what: str) -> None:
    """In the caller's transaction, after `lock_editable(...)` gave `row`: the supplier changed
    what the product shows (its photos). A listed product goes back to review (TRANSITIONS["edit"]),
    recorded as `resubmitted` with `what` as the reason, so the admin's trail shows it."""
    now = utcnow()
    target = TRANSITIONS["edit"].get(row["status"])
    values: dict[Any, Any] = {Product.updated_at: now}
    if target is not None:
        values[Product.status] = target
    await Product.update(values).where((Product.id == row["id"]) & (Product.status == row["status"]))
    if target is not None:
        await ProductReview.insert(
            ProductReview(product=row["id"], action=ReviewAction.resubmitted, actor_id=actor_id, reason=what, at=now)
        )


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
    data = validated(
        ProductIn,
        dict(title=title, region=region, category=category, unit=unit, price_fen=price_fen, stock=stock, description=description),
    )
    _check_status(status)
    check_category(data.category)
    title, unit = clean_text("title", data.title), clean_text("unit", data.unit)
    async with Product._meta.db.transaction():
        region_id = await certified_region_id(supplier_id, data.region)
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
    `stock` sets the stock; `stock_delta` adds to the stock as it is now, so what orders
    reserved meanwhile stays reserved (`invalid_state` if that leaves 0..MAX_STOCK; never both).
    A delisted product is frozen (`invalid_state`)."""
    patch = validated(ProductPatch, dict(changes))
    given = patch.changes()
    if not given:
        raise invalid("body", "give at least one field to change")
    if "stock" in given and "stock_delta" in given:
        raise invalid("stock_delta", "give stock or stock_delta, not both")
    delta: int = given.get("stock_delta", 0)
    new: dict[str, Any] = {}
    for field in ("title", "unit"):
        if field in given:
            new[field] = clean_text(field, given[field])
    if "category" in given:
        check_category(given["category"])
        new["category"] = given["category"]
    if "description" in given:
        new["description"] = given["description"].strip()
    for field in ("price_fen", "stock"):
        if field in given:
            new[field] = given[field]
    async with Product._meta.db.transaction():
        row = await lock_editable(supplier_id, product_id)
        if "region" in given:
            new["region"] = await certified_region_id(supplier_id, given["region"])
        changed = {field: value for field, value in new.items() if value != row[field]}
        values: dict[Any, Any] = {getattr(Product, field): value for field, value in changed.items()}
        if REVIEWED_FIELDS.intersection(changed) and row["status"] in TRANSITIONS["edit"]:
            values[Product.status] = TRANSITIONS["edit"][row["status"]]
        where = Product.id == product_id
        if delta:
            values[Product.stock] = Product.stock + delta
            where &= Product.stock >= -delta if delta < 0 else Product.stock <= MAX_STOCK - delta
        if values:
            values[Product.updated_at] = utcnow()
            if not await Product.update(values).where(where).returning(Product.id):
                beyond = "below 0" if delta < 0 else f"above {MAX_STOCK}"
                raise DomainError(
                    "invalid_state", f"stock is {row['stock']} and a change of {delta:+d} would take it {beyond}", stock=row["stock"]
                )
    return await get_product(product_id)


async def _transition(
    product_id: int, action: str, *, actor_id: int | None, supplier_id: int | None = None, note: str | None = None
) -> ProductOut:
    """Move a product along TRANSITIONS[action] and record who did it (a `ProductReview` row, in the
    same transaction); a move the table does not allow is `invalid_state` and records nothing."""
    async with Product._meta.db.transaction():
        if supplier_id is not None:
            row = await _own_product(supplier_id, product_id)
        else:
            row = await _locked_product(product_id)
        status = row["status"]
        target = TRANSITIONS[action].get(status)
        if target is None:
            raise DomainError(
                "invalid_state",
                f"cannot {action} a product that is {status}",
                product_status=status,
                allowed_from=sorted(TRANSITIONS[action]),
            )
        now = utcnow()
        values: dict[Any, Any] = {Product.status: target, Product.updated_at: now}
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
        await ProductReview.insert(
            ProductReview(product=product_id, action=RECORDED[action], actor_id=actor_id, reason=note or "", at=now)
        )
        if action in DECISIONS:
            decision = {
                "product_id": product_id, "supplier_id": row["supplier"], "title": row["title"],
                "action": action, "reason": note or "", "at": now,
            }
            for listener in REVIEW_LISTENERS:
                await listener(decision)
    return await get_product(product_id)


async def submit_product(supplier_id: int, product_id: int, *, actor_id: int | None) -> ProductOut:
    """The supplier asks for review (from draft or rejected). `actor_id`: the user who did it."""
    return await _transition(product_id, "submit", actor_id=actor_id, supplier_id=supplier_id)


async def approve_product(product_id: int, *, actor_id: int | None) -> ProductOut:
    return await _transition(product_id, "approve", actor_id=actor_id, note="")


async def reject_product(product_id: int, reason: str, *, actor_id: int | None) -> ProductOut:
    return await _transition(product_id, "reject", actor_id=actor_id, note=clean_text("reason", reason)[:200])


async def delist_product(product_id: int, reason: str, *, actor_id: int | None) -> ProductOut:
    return await _transition(product_id, "delist", actor_id=actor_id, note=clean_text("reason", reason)[:200])


async def list_reviews(*, limit: int = 50, offset: int = 0, since: datetime | None = None) -> tuple[list[ReviewOut], int]:
    """The review's record, newest first, and how many rows there are in all: who submitted,
    approved, rejected or delisted which product, and why. `since`: only from that moment on."""
    check_page(limit, offset)
    if since is not None and since.utcoffset() is None:
        raise invalid("since", "must carry a UTC offset")
    columns = (
        ProductReview.at, ProductReview.actor_id, ProductReview.action, ProductReview.reason,
        ProductReview.product.as_alias("product_id"), ProductReview.product.title.as_alias("product_title"),
    )  # fmt: skip
    rows_query = (
        ProductReview.select(*columns).order_by(ProductReview.at, ProductReview.id, ascending=False).limit(limit).offset(offset)
    )
    count_query = ProductReview.count()
    if since is not None:
        rows_query = rows_query.where(ProductReview.at >= since)
        count_query = count_query.where(ProductReview.at >= since)
    rows = await rows_query
    return [ReviewOut(**{**r, "at": local(r["at"])}) for r in rows], await count_query


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
    async with Product._meta.db.transaction():
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
