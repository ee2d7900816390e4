"""Budgets domain logic: plain async functions over explicit arguments, no HTTP."""

from __future__ import annotations

from typing import Any


class BudgetError(Exception):
    """A refusal with an API.md error `code` (mapped to a problem detail by the shop)."""

    def __init__(self, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail
        self.extra = extra
