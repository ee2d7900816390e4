"""Stock for the orders code: `reserve_stock` when an order is placed, `release_stock` when
it is cancelled, expires or is refunded. Both run inside the caller's transaction when
there is one, so the stock moves with the order (and its budget holds) or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog.tables import Product, ProductStatus
from common.errors import DomainError
from common.schemas import ID_MAX


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


async def _refuse(wanted: dict[int, int], taken: dict[int, Any]) -> None:
    """Why the order cannot have its stock: every missing, unlisted or short product (the
    stock this transaction already took counted back)."""
    ids = sorted(wanted)
    in_range = [i for i in ids if 1 <= i <= ID_MAX]
    rows = {r["id"]: r for r in await Product.select(Product.id, Product.status, Product.stock).where(Product.id.is_in(in_range))} if in_range else {}
    if missing := [i for i in ids if i not in rows]:
        raise DomainError("not_found", f"no such product: {', '.join(map(str, missing))}", products=missing)
    if unlisted := [{"product_id": i, "status": rows[i]["status"]} for i in ids if rows[i]["status"] != ProductStatus.listed]:
        raise DomainError("not_listed", "some products are not on sale", products=unlisted)
    available = {i: rows[i]["stock"] + (wanted[i] if i in taken else 0) for i in ids}
    short = [{"product_id": i, "requested": wanted[i], "available": available[i]} for i in ids if available[i] < wanted[i]]
    raise DomainError("out_of_stock", "not enough stock", products=short)


async def release_stock(lines: list[tuple[int, int]]) -> None:
    """Put reserved stock back (cancelled, expired or refunded orders), whatever the product's
    state is now. Inside the caller's transaction when there is one; ascending product id."""
    wanted = _check_lines(lines)
    async with Product._meta.db.transaction():
        for product_id in sorted(i for i in wanted if 1 <= i <= ID_MAX):
            await Product.update({Product.stock: Product.stock + wanted[product_id]}).where(Product.id == product_id)
