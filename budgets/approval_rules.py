"""A branch's approval rule (工会审批): union funds are spent on a decision, so a federation
admin may require that a branch's orders above an amount wait for the branch's approver
(`shop/orders/approval.py` applies it). `null`: no approval; `0`: every order.

The rule is a column of the branch (`Union.approval_above_fen`, read by placing in the
statement it already makes); every change is kept in `ApprovalRuleChange` (who, when,
from what to what), written in the same transaction."""

from __future__ import annotations

from datetime import datetime

from budgets.checks import check_amount
from budgets.tables import ApprovalRuleChange, Union
from budgets.unions import require_branch
from common.sql import for_update

APPROVAL_MAX_FEN = 10_000_000_000  # 1 亿元: anything above is a typing slip


async def get_rule(union_id: int) -> dict:
    """`{union_id, code, name, required_above_fen, history}` of a branch (`not_found`, or
    `invalid_state` for a federation or district); history oldest first."""
    union = await require_branch(union_id)
    row = await Union.select(Union.approval_above_fen).where(Union.id == union_id).first()
    changes = await ApprovalRuleChange.select().where(ApprovalRuleChange.union == union_id).order_by(ApprovalRuleChange.id)
    return {
        "union_id": union_id,
        "code": union["code"],
        "name": union["name"],
        "required_above_fen": row["approval_above_fen"],
        "history": [_change(c) for c in changes],
    }


def _change(row: dict) -> dict:
    return {
        "previous_above_fen": row["previous_above_fen"],
        "required_above_fen": row["required_above_fen"],
        "at": row["at"],
        "actor_id": row["actor_id"],
    }


async def set_rule(union_id: int, required_above_fen: int | None, *, actor_id: int | None, at: datetime) -> dict:
    """Set a branch's rule and record the change, in one transaction. Orders already placed
    keep the way they were placed (waiting or not). Answers `get_rule`'s shape."""
    if required_above_fen is not None:
        check_amount(required_above_fen, "required_above_fen", APPROVAL_MAX_FEN)
    await require_branch(union_id)
    async with Union._meta.db.transaction():
        row = await for_update(Union.select(Union.approval_above_fen).where(Union.id == union_id), Union).first()
        previous = row["approval_above_fen"]
        if previous != required_above_fen:
            await Union.update({Union.approval_above_fen: required_above_fen}).where(Union.id == union_id)
            await ApprovalRuleChange.insert(
                ApprovalRuleChange(
                    union=union_id, previous_above_fen=previous, required_above_fen=required_above_fen, at=at, actor_id=actor_id
                )
            )
    return await get_rule(union_id)


async def branches_with_rules(limit: int = 500) -> list[dict]:
    """The branches that have a rule, by code: `{id, code, name, approval_above_fen}`."""
    return await Union.select(Union.id, Union.code, Union.name, Union.approval_above_fen).where(
        Union.approval_above_fen.is_not_null()
    ).order_by(Union.code).limit(limit)


def needs_approval(rule_above_fen: int | None, total_fen: int) -> bool:
    """Does an order of `total_fen` wait for approval under the rule?"""
    return rule_above_fen is not None and total_fen > rule_above_fen
