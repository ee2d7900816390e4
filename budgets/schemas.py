"""msgspec structs for the budgets package's bodies: unions, members, the cap policy, targets, budgets."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from budgets.states import Level
from common.schemas import Body, Name

# The domain modules check the same rules again (the seeder calls them too); these
# limits make the schema say them and refuse the body before it reaches them.
UnionCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$")]
UnionName = Annotated[Name, msgspec.Meta(min_length=1, max_length=100)]
# a Literal of the enum's values: the body decodes to a plain str, OpenAPI lists them inline
LevelName = Literal[tuple(level.value for level in Level)]  # type: ignore[valid-type]
MemberNo = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
MemberName = Annotated[Name, msgspec.Meta(min_length=1, max_length=50)]
CapFen = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
TargetFen = Annotated[int, msgspec.Meta(ge=0, le=10**13)]



# --- unions -----------------------------------------------------------------


class UnionIn(Body):
    code: UnionCode
    name: UnionName
    level: LevelName
    parent_code: UnionCode | None = None  # none: a top-level federation


class UnionOut(msgspec.Struct, kw_only=True):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None


class UnionDetail(UnionOut, kw_only=True):
    children: list[int]


class UnionList(msgspec.Struct, kw_only=True):
    items: list[UnionOut]
    total: int


# --- cap policy and targets -------------------------------------------------


class PolicyIn(Body):
    cap_fen: CapFen


class PolicyOut(msgspec.Struct, kw_only=True):
    year: int
    cap_fen: int


class ActorOut(msgspec.Struct, kw_only=True):
    id: int  # the user's id (the budgets package knows no more of users)


class PolicyChangeOut(msgspec.Struct, kw_only=True):
    cap_fen: int
    previous_cap_fen: int | None  # null: set before changes were kept
    at: str
    actor: ActorOut | None  # null: no user (carried over by a migration, or a script)


class ApprovalRuleIn(Body):
    # an order above this many fen waits for the branch's approver; null: never; 0: every order
    required_above_fen: Annotated[int, msgspec.Meta(ge=0, le=10_000_000_000)] | None


class ApprovalRuleChangeOut(msgspec.Struct, kw_only=True):
    previous_above_fen: int | None
    required_above_fen: int | None
    at: str
    actor: ActorOut | None


class ApprovalRuleOut(msgspec.Struct, kw_only=True):
    union_id: int
    code: str
    name: str
    required_above_fen: int | None
    history: list[ApprovalRuleChangeOut]  # oldest first


class PolicyHistoryOut(PolicyOut, kw_only=True):
    history: list[PolicyChangeOut]  # oldest first


class AffectedMemberOut(msgspec.Struct, kw_only=True):
    member_id: int
    spent_fen: int
    held_fen: int


class PolicySetOut(PolicyOut, kw_only=True):
    previous_cap_fen: int
    affected: list[AffectedMemberOut]  # held + spent above the new cap; nothing is taken back


class TargetIn(Body):
    target_fen: TargetFen


class TargetOut(msgspec.Struct, kw_only=True):
    union_id: int
    year: int
    target_fen: int | None  # null: no target set for that year (GET only)


# --- members ----------------------------------------------------------------


class MemberIn(Body):
    member_no: MemberNo
    name: MemberName


class MemberPatch(Body):
    name: MemberName | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class MemberOut(msgspec.Struct, kw_only=True):
    id: int
    member_no: str
    name: str
    active: bool


class MemberList(msgspec.Struct, kw_only=True):
    items: list[MemberOut]
    total: int


class ImportLineError(msgspec.Struct, kw_only=True):
    line: int
    message: str


class ImportOut(msgspec.Struct, kw_only=True):
    created: int
    updated: int  # existing member_no whose name changed or who was reactivated
    unchanged: int  # existing member_no already exactly so
    errors: list[ImportLineError]


# --- budgets ----------------------------------------------------------------


class MemberBudgetOut(msgspec.Struct, kw_only=True):
    member_id: int
    member_no: str
    name: str
    active: bool
    spent_fen: int
    held_fen: int
    remaining_fen: int


class BudgetOut(msgspec.Struct, kw_only=True):
    union_id: int
    year: int
    cap_fen: int
    members: list[MemberBudgetOut]
