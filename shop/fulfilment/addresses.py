"""A branch's delivery addresses (收货地址): at most one is the default (a partial unique
index keeps it so under any concurrency); a branch's first address is its default; when
the default is deleted, the oldest address left becomes the default. An order copies the
address it was placed with (`delivery_row` and `delivery_of`), so later edits do not change it."""

from __future__ import annotations

from typing import Any

from common.errors import DomainError
from common.sql import for_update, is_unique_violation
from shop.fulfilment.schemas import AddressIn, AddressOut, AddressPatch, DeliveryOut, clean_line, clean_phone
from shop.fulfilment.tables import DeliveryAddress as A


def _out(row: dict[str, Any]) -> AddressOut:
    return AddressOut(id=row["id"], name=row["name"], phone=row["phone"], address=row["address"], is_default=row["is_default"])


async def list_addresses(branch_id: int) -> list[AddressOut]:
    rows = await A.select().where(A.branch == branch_id).order_by(A.is_default, ascending=False).order_by(A.id)
    return [_out(r) for r in rows]


async def _own(branch_id: int, address_id: int) -> dict[str, Any]:
    row = await for_update(A.select().where(A.id == address_id), A).first()
    if row is None:
        raise DomainError("not_found", f"address {address_id} does not exist")
    if row["branch"] != branch_id:
        raise DomainError("forbidden", "this address belongs to another branch")
    return row


async def _unset_default(branch_id: int, but: int | None = None) -> None:
    where = (A.branch == branch_id) & (A.is_default == True)  # noqa: E712
    if but is not None:
        where &= A.id != but
    await A.update({A.is_default: False}).where(where)


async def _write(fn):
    """Run `fn` in a transaction; two writers making a default at once: one is refused."""
    try:
        async with A._meta.db.transaction():
            return await fn()
    except Exception as exc:
        if is_unique_violation(exc):
            raise DomainError("invalid_state", "another default address was set at the same moment; try again") from exc
        raise


async def create_address(branch_id: int, body: AddressIn) -> AddressOut:
    values = {
        "name": clean_line(body.name, "name"),
        "phone": clean_phone(body.phone),
        "address": clean_line(body.address, "address"),
    }

    async def run():
        first = not await A.exists().where(A.branch == branch_id)
        default = body.is_default or first
        if default:
            await _unset_default(branch_id)
        rows = await A.insert(A(branch=branch_id, is_default=default, **values)).returning(*A.all_columns())
        return _out(rows[0])

    return await _write(run)


async def update_address(branch_id: int, address_id: int, body: AddressPatch) -> AddressOut:
    changes: dict[Any, Any] = {}
    if body.name is not None:
        changes[A.name] = clean_line(body.name, "name")
    if body.phone is not None:
        changes[A.phone] = clean_phone(body.phone)
    if body.address is not None:
        changes[A.address] = clean_line(body.address, "address")

    async def run():
        row = await _own(branch_id, address_id)
        if body.is_default is True and not row["is_default"]:
            await _unset_default(branch_id, but=address_id)
            changes[A.is_default] = True
        elif body.is_default is False and row["is_default"]:
            raise DomainError("invalid_state", "make another address the default instead; a branch keeps one default")
        if changes:
            await A.update(changes).where(A.id == address_id)
        return _out(await A.select().where(A.id == address_id).first())

    return await _write(run)


async def delete_address(branch_id: int, address_id: int) -> None:
    async def run():
        row = await _own(branch_id, address_id)
        await A.delete().where(A.id == address_id)
        if row["is_default"]:
            oldest = await A.select(A.id).where(A.branch == branch_id).order_by(A.id).first()
            if oldest:
                await A.update({A.is_default: True}).where(A.id == oldest["id"])

    await _write(run)


async def delivery_row(branch_id: int, address_id: int | None) -> dict[str, Any] | None:
    """The named address (any branch's) or the branch's default: `branch, name, phone, address`."""
    query = A.select(A.branch, A.name, A.phone, A.address)
    if address_id is not None:
        return await query.where(A.id == address_id).first()
    return await query.where((A.branch == branch_id) & (A.is_default == True)).first()  # noqa: E712


# The same lookup as `delivery_row`, as a part of another statement (placing reads it with
# the order's other first facts): `{address_id}`, `{address_id}`, `{branch}` its parameters
# (placeholders `{}` in that order), answering `branch, name, phone, address` or no row.
# Either half is reached by an index (the key, or the branch's one default), whatever plan
# the statement keeps.
DELIVERY_LATERAL_SQL = (
    "SELECT branch, name, phone, address FROM shop_delivery_address WHERE id = {}::integer "
    "UNION ALL SELECT branch, name, phone, address FROM shop_delivery_address "
    "WHERE {}::integer IS NULL AND branch = {} AND is_default LIMIT 1"
)


def delivery_of(row: dict[str, Any] | None, branch_id: int, address_id: int | None) -> dict[str, str] | None:
    """The copy an order keeps, from the address row found (`branch, name, phone, address`, or
    None): `not_found` for a named address that does not exist, `forbidden` for another
    branch's."""
    if row is None:
        if address_id is not None:
            raise DomainError("not_found", f"address {address_id} does not exist", field="address_id")
        return None
    if row["branch"] != branch_id:
        raise DomainError("forbidden", "this address belongs to another branch", field="address_id")
    return {"name": row["name"], "phone": row["phone"], "address": row["address"]}


def delivery_out(order: dict[str, Any]) -> DeliveryOut | None:
    """An order's (or a shipment's order's) copy of its delivery address, if it has one."""
    if not order.get("delivery_address"):
        return None
    return DeliveryOut(name=order["delivery_name"], phone=order["delivery_phone"], address=order["delivery_address"])
