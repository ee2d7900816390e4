"""Which union a report or an audit page is about, for the caller (to be folded into
shop/auth/scope.py). The budgets package takes only plain union ids: the principal stays
here, in the shop."""

from __future__ import annotations

from typing import Any

from budgets import unions
from common.errors import DomainError


async def scope_root(principal: Any, union_id: int | None) -> int | None:
    """The union a report is about: the caller's own scope, or `union_id` inside it.

    Admins may name any union (None: the whole shop); auditors and buyers only their
    subtree (a buyer's is its branch)."""
    if principal.role == "admin":
        if union_id is not None and await unions.get_union(union_id) is None:
            raise DomainError("not_found", f"union {union_id} does not exist")
        return union_id
    own = principal.union_id
    if union_id is None or union_id == own:
        return own
    if await unions.get_union(union_id) is None or not await unions.is_in_subtree(union_id, own):
        raise DomainError("forbidden", f"union {union_id} is outside your scope")
    return union_id
