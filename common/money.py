"""Money is integer fen; this is the one way it is written as yuan text (no floats)."""

from __future__ import annotations


def yuan_text(fen: int) -> str:
    """Exact yuan for a fen amount, without symbol or separators: 123456 -> "1234.56", -5 -> "-0.05"."""
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
