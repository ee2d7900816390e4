"""Whom a branch's invoices are made out to (发票抬头 and 纳税人识别号). A shipment copies it
when it is created, so the supplier invoices the branch as it was when the order was paid."""

from __future__ import annotations

from datetime import datetime

from common.sql import is_unique_violation
from shop.fulfilment.schemas import InvoiceProfileIn, InvoiceToOut, clean_line
from shop.fulfilment.tables import InvoiceProfile as P


async def get_profile(branch_id: int) -> InvoiceToOut | None:
    row = await P.select(P.title, P.tax_no).where(P.branch == branch_id).first()
    return InvoiceToOut(title=row["title"], tax_no=row["tax_no"]) if row else None


async def put_profile(branch_id: int, body: InvoiceProfileIn, *, user_id: int, now: datetime) -> InvoiceToOut:
    values = {P.title: clean_line(body.title, "title"), P.tax_no: body.tax_no.upper(), P.updated_at: now, P.updated_by: user_id}
    for _ in range(2):  # a first PUT racing another: the loser updates the winner's row
        try:
            async with P._meta.db.transaction():
                if not await P.update(values).where(P.branch == branch_id).returning(P.id):
                    await P.insert(P(branch=branch_id, **{c._meta.name: v for c, v in values.items()}))
            break
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
    return await get_profile(branch_id)  # type: ignore[return-value]
