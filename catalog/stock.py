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
from common.sql import is_postgres


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
    async with Product._meta.db.transaction():
        rows: dict[int, dict[str, Any]] = {}
        if in_range := [i for i in ids if 1 <= i <= ID_MAX]:
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
    async with Product._meta.db.transaction():
        for product_id in sorted(i for i in wanted if 1 <= i <= ID_MAX):
            await Product.update({Product.stock: Product.stock + wanted[product_id]}).where(Product.id == product_id)
