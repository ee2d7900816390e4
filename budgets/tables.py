"""Budget tables: the union tree, members, the cap policy, budgets, the ledger, targets."""


from piccolo.columns import (
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from budgets.states import LedgerKind, Level
from common.sql import one_of


class Union(Table, tablename="budget_union"):
    """A union in the tree: federation > district > branch (基层工会, the buyer)."""

    code = Varchar(length=32, unique=True)
    name = Varchar(length=100)
    level = Varchar(length=16)
    parent = ForeignKey("self", null=True, default=None, on_delete=OnDelete.restrict)
    # Materialised path "/1/7/42/": a subtree is one indexed prefix match.
    path = Varchar(length=255, index=True, default="")
    # a branch's approval rule (工会审批): an order above this many fen waits for its
    # approver; null: never, 0: every order (budgets/approval_rules.py)
    approval_above_fen = BigInt(null=True, default=None)

    union_level_known = Check(one_of("level", Level))


class Member(Table, tablename="budget_member"):
    union = ForeignKey(Union, null=False, on_delete=OnDelete.restrict)
    member_no = Varchar(length=32)
    name = Varchar(length=50)
    active = Boolean(default=True)

    member_member_no_unique = Unique([union, member_no])


class MemberLink(Table, tablename="budget_member_link"):
    """A member's read-only link (budgets/links.py): the token is never stored. `nonce` and
    the app's secret give it back (to print it again); `token_hash` (sha256 of the token)
    finds the member. A new nonce and hash end the old link."""

    member = ForeignKey(Member, null=False, unique=True, on_delete=OnDelete.restrict)
    nonce = Varchar(length=32)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()


class CapPolicy(Table, tablename="budget_cap_policy"):
    year = Integer(unique=True)
    cap_fen = Integer()

    policy_cap_non_negative = Check(cap_fen >= 0)


class CapPolicyChange(Table, tablename="budget_cap_policy_change"):
    """Every change of a year's cap, in the order made; never updated or deleted.

    `ledger_seq` is the last ledger entry committed before the change took effect: holds
    with a higher `seq` were checked against `cap_fen`, those before it against the cap
    before (see budgets/policy.py). `previous_cap_fen` is that cap (null where unknown: a
    policy set before changes were kept). `actor_id` is the shop's user id, a plain number:
    the budgets package does not know the shop's users."""

    year = Integer(index=True)
    cap_fen = Integer()
    previous_cap_fen = Integer(null=True, default=None)
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)
    ledger_seq = Integer(default=0)

    change_cap_non_negative = Check(cap_fen >= 0)


class ApprovalRuleChange(Table, tablename="budget_approval_rule_change"):
    """Every change of a branch's approval rule, in the order made; never updated or
    deleted. Null amounts: no approval. `actor_id` is the shop's user id."""

    union = ForeignKey(Union, null=False, index=True, on_delete=OnDelete.restrict)
    previous_above_fen = BigInt(null=True, default=None)
    required_above_fen = BigInt(null=True, default=None)
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)


class MemberBudget(Table, tablename="budget_member_budget"):
    """One row per member and year. The row lock guards the balance and the ledger chain."""

    member = ForeignKey(Member, null=False, on_delete=OnDelete.restrict)
    union = ForeignKey(Union, null=False, on_delete=OnDelete.restrict)  # the member's branch, for roll-ups
    year = Integer()
    held_fen = BigInt(default=0)
    spent_fen = BigInt(default=0)
    entries = Integer(default=0)
    last_hash = Varchar(length=64, default="")

    budget_member_year_unique = Unique([member, year])
    budget_held_non_negative = Check(held_fen >= 0)
    budget_spent_non_negative = Check(spent_fen >= 0)


class LedgerEntry(Table, tablename="budget_ledger"):
    """Append-only: never updated, never deleted. `hash` chains per member-year."""

    seq = Serial(primary_key=True)
    member = ForeignKey(Member, null=False, index=True, on_delete=OnDelete.restrict)
    year = Integer()
    order_id = Integer(null=True, default=None, index=True)
    kind = Varchar(length=8)
    amount_fen = BigInt()
    at = Timestamptz()
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)

    ledger_kind_known = Check(one_of("kind", LedgerKind))
    ledger_amount_positive = Check(amount_fen > 0)


class UnionYearTotal(Table, tablename="budget_union_year_total"):
    """Per-branch-year spending kept up to date by capture and refund (reports read this)."""

    union = ForeignKey(Union, null=False, on_delete=OnDelete.restrict)
    year = Integer()
    spent_fen = BigInt(default=0)
    orders = Integer(default=0)

    total_union_year_unique = Unique([union, year])


class Target(Table, tablename="budget_target"):
    union = ForeignKey(Union, null=False, on_delete=OnDelete.restrict)
    year = Integer()
    target_fen = BigInt()

    target_union_year_unique = Unique([union, year])
    target_non_negative = Check(target_fen >= 0)
