"""The cap policy: the per-member cap of each year (60000 fen unless set): what holds read
(`cap_for_year`), and where an admin sees and sets it."""

from __future__ import annotations

from budgets.checks import check_amount, check_year
from budgets.tables import CapPolicy

DEFAULT_CAP_FEN = 60_000  # 600 yuan a member a year (不超过600元/人/年)
CAP_MAX_FEN = 10_000_000


async def cap_for_year(year: int) -> int:
    """The per-member cap of a year: the policy row, else 60000 fen."""
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    return row["cap_fen"] if row else DEFAULT_CAP_FEN


async def get_policy(year: int) -> dict:
    """`{year, cap_fen, default}`: `default` is true when no policy row sets that year's cap."""
    check_year(year)
    row = await CapPolicy.select(CapPolicy.cap_fen).where(CapPolicy.year == year).first()
    return {"year": year, "cap_fen": row["cap_fen"] if row else DEFAULT_CAP_FEN, "default": row is None}


async def set_cap(year: int, cap_fen: int) -> dict:
    """Set the per-member cap of a year (upsert). A lower cap only blocks new holds:
    nothing already held or spent changes."""
    check_year(year)
    check_amount(cap_fen, "cap_fen", CAP_MAX_FEN)
    async with CapPolicy._meta.db.transaction():
        await CapPolicy.insert(CapPolicy(year=year, cap_fen=cap_fen)).on_conflict(
            target=CapPolicy.year, action="DO UPDATE", values=[CapPolicy.cap_fen]
        )
    return {"year": year, "cap_fen": cap_fen}
