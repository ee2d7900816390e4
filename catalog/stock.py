"""Stock for the orders code: `reserve_stock` when an order is placed, `release_stock` when
it is cancelled, expires or is refunded. Both run inside the caller's transaction when
there is one, so the stock moves with the order (and its budget holds) or not at all.

Placing an order on PostgreSQL takes its stock in its last statement instead, so that the
product rows, the hottest rows of the shop, stay locked for that statement and the commit
only: the products are read unlocked first (`products_sql`, `priced`: refusals as
`reserve_stock` gives them), and the last statement takes the stock only where each
product is still listed at the price, title, supplier and region that were read and has
enough (`take_parts`); when it does not, the order is not written and the caller asks
`check_available` why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog.tables import Product, ProductStatus
from common.errors import DomainError
from common.schemas import ID_MAX
from common.sql import CtePart


@dataclass(frozen=True)
class ReservedLine:
    product_id: int
    quantity: int
    unit_price_fen: int
    amount_fen: int
    supplier_id: int
    region_code: str
    title: str
    region_id: int | None = None  # as read by `priced` (what `take_parts` checks)


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

    Runs inside the caller's transaction when there is one. One conditional `UPDATE …
    RETURNING` a product, in ascending product id: the check is inside the statement, and on
    PostgreSQL the row stays locked from there to the commit. Refusals (then the caller's
    transaction rolls back): `not_found` (products: [ids]), `not_listed` (products:
    [{product_id, status}]), `out_of_stock` (products: [{product_id, requested, available}],
    every short product)."""
    wanted = _check_lines(lines)
    if not wanted:
        return []
    ids = sorted(wanted)
    taken: dict[int, dict[str, Any]] = {}
    async with Product._meta.db.transaction():
        for i in ids:
            rows = await Product.raw(
                "UPDATE catalog_product SET stock = stock - {} WHERE id = {} AND stock >= {} AND status = {} "
                "RETURNING price_fen, supplier, title, "
                "(SELECT code FROM catalog_region WHERE catalog_region.id = catalog_product.region) AS region_code",
                wanted[i], i, wanted[i], ProductStatus.listed.value,
            ) if 1 <= i <= ID_MAX else []
            if not rows:
                await _refuse(wanted, taken)
            taken[i] = rows[0]
    return [
        ReservedLine(
            product_id=pid,
            quantity=q,
            unit_price_fen=taken[pid]["price_fen"],
            amount_fen=taken[pid]["price_fen"] * q,
            supplier_id=taken[pid]["supplier"],
            region_code=taken[pid]["region_code"],
            title=taken[pid]["title"],
        )
        for pid, q in wanted.items()
    ]


def wanted_ids(lines: Sequence[tuple[int, int]]) -> list[int]:
    """The products of an order's lines that can exist (ids in range), ascending: what
    `products_sql` reads."""
    return sorted(i for i in _check_lines(lines) if 1 <= i <= ID_MAX)


def products_sql(count: int) -> str:
    """The products of an order (`count` ids as `{}` parameters), read without a lock: one
    row each, with its region's code."""
    ids = ", ".join("{}" for _ in range(count)) or "NULL"
    return (
        "SELECT p.id AS product_id, p.status AS product_status, p.stock AS product_stock, p.price_fen, "
        "p.supplier AS supplier_id, p.title, p.region AS region_id, r.code AS region_code "
        f"FROM catalog_product p LEFT JOIN catalog_region r ON r.id = p.region WHERE p.id IN ({ids})"
    )


def priced(lines: Sequence[tuple[int, int]], rows: Sequence[Any]) -> list[ReservedLine]:
    """The order's lines priced from the products as read (`products_sql`'s rows), in the
    order given; refused as `reserve_stock` refuses when a product is missing, not listed or
    short. Nothing is taken yet (`take_parts`)."""
    wanted = _check_lines(lines)
    found = {r["product_id"]: r for r in rows}
    _refusal(wanted, {i: {"status": r["product_status"], "stock": r["product_stock"]} for i, r in found.items()}, {})
    return [
        ReservedLine(
            product_id=pid, quantity=q, unit_price_fen=found[pid]["price_fen"], amount_fen=found[pid]["price_fen"] * q,
            supplier_id=found[pid]["supplier_id"], region_code=found[pid]["region_code"], title=found[pid]["title"],
            region_id=found[pid]["region_id"],
        )
        for pid, q in wanted.items()
    ]


def take_parts(reserved: Sequence[ReservedLine]) -> tuple[list[CtePart], str]:
    """Parts of a PostgreSQL `WITH` statement taking the stock of `priced` lines, one
    conditional `UPDATE … RETURNING` a product in ascending id, each only once the one
    before it took its stock (so the rows are locked in that order). Returns the parts and
    the name of the last: it gives a row only if every product was taken."""
    parts: list[CtePart] = []
    before = ""
    for n, line in enumerate(sorted(reserved, key=lambda r: r.product_id)):
        name = f"stock_taken_{n}"
        parts.append(CtePart(
            name,
            "UPDATE catalog_product SET stock = stock - {} WHERE id = {} AND stock >= {} AND status = {} AND price_fen = {} "
            "AND supplier = {} AND title = {} AND region IS NOT DISTINCT FROM {}"
            + (f" AND EXISTS (SELECT 1 FROM {before})" if before else "") + " RETURNING id",
            (line.quantity, line.product_id, line.quantity, ProductStatus.listed.value, line.unit_price_fen,
             line.supplier_id, line.title, line.region_id),
        ))  # fmt: skip
        before = name
    return parts, before


async def check_available(lines: Sequence[tuple[int, int]]) -> None:
    """After `take_parts` took nothing: refuse (`not_found`, `not_listed`, `out_of_stock`)
    if that is why; returns when every product is there, listed and has the stock (then
    a product changed under the order: read it again and retry)."""
    wanted = _check_lines(lines)
    _refusal(wanted, await _states(wanted), {})


async def _states(wanted: dict[int, int]) -> dict[int, Any]:
    """id -> {status, stock} of the products that exist."""
    in_range = [i for i in sorted(wanted) if 1 <= i <= ID_MAX]
    if not in_range:
        return {}
    return {r["id"]: r for r in await Product.select(Product.id, Product.status, Product.stock).where(Product.id.is_in(in_range))}


def _refusal(wanted: dict[int, int], rows: dict[int, Any], taken: dict[int, Any]) -> None:
    """Raise for every missing, unlisted or short product (`rows`: id -> {status, stock};
    the stock this transaction already took counted back); return if there is none."""
    ids = sorted(wanted)
    if missing := [i for i in ids if i not in rows]:
        raise DomainError("not_found", f"no such product: {', '.join(map(str, missing))}", products=missing)
    if unlisted := [{"product_id": i, "status": rows[i]["status"]} for i in ids if rows[i]["status"] != ProductStatus.listed]:
        raise DomainError("not_listed", "some products are not on sale", products=unlisted)
    available = {i: rows[i]["stock"] + (wanted[i] if i in taken else 0) for i in ids}
    if short := [{"product_id": i, "requested": wanted[i], "available": available[i]} for i in ids if available[i] < wanted[i]]:
        raise DomainError("out_of_stock", "not enough stock", products=short)


async def _refuse(wanted: dict[int, int], taken: dict[int, Any]) -> None:
    """Why the order cannot have its stock: every missing, unlisted or short product (the
    stock this transaction already took counted back)."""
    _refusal(wanted, await _states(wanted), taken)
    raise DomainError("out_of_stock", "not enough stock", products=[])


async def release_stock(lines: list[tuple[int, int]]) -> None:
    """Put reserved stock back (cancelled, expired or refunded orders), whatever the product's
    state is now. Inside the caller's transaction when there is one; ascending product id."""
    wanted = _check_lines(lines)
    async with Product._meta.db.transaction():
        for product_id in sorted(i for i in wanted if 1 <= i <= ID_MAX):
            await Product.update({Product.stock: Product.stock + wanted[product_id]}).where(Product.id == product_id)
