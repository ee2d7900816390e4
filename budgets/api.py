"""HTTP for the budgets package: the union tree, the cap policy, targets, a branch's
members and budget. Thin: parse, authorise, call one domain function, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter

from budgets import approval_rules, ledger, members, policy, targets, unions
from budgets.checks import YEAR_MAX, YEAR_MIN
from budgets.schemas import (
    UNSET,
    ActorOut,
    AffectedMemberOut,
    ApprovalRuleChangeOut,
    ApprovalRuleIn,
    ApprovalRuleOut,
    BudgetOut,
    ImportOut,
    LevelName,
    MemberBudgetOut,
    MemberIn,
    MemberList,
    MemberOut,
    MemberPatch,
    PolicyChangeOut,
    PolicyHistoryOut,
    PolicyIn,
    PolicySetOut,
    TargetIn,
    TargetOut,
    UnionDetail,
    UnionIn,
    UnionList,
    UnionOut,
)
from common.clock import local
from common.errors import DomainError
from common.pagination import PAGINATION, Paging
from common.schemas import ONE_LINE, PathId, QueryId

PathYear = Annotated[int, PathParameter(ge=YEAR_MIN, le=YEAR_MAX)]
QueryYear = Annotated[int | None, QueryParameter(ge=YEAR_MIN, le=YEAR_MAX)]

CSV_MEDIA_TYPES = ("text/csv", "application/csv")
IMPORT_MAX_BYTES = 8 * 1024 * 1024  # 20 000 rows of the longest member_no and name fit


def _union_out(union: dict[str, Any]) -> UnionOut:
    return UnionOut(
        id=union["id"], code=union["code"], name=union["name"], level=union["level"], parent_id=union["parent_id"]
    )


def _member_out(member: dict[str, Any]) -> MemberOut:
    return MemberOut(id=member["id"], member_no=member["member_no"], name=member["name"], active=member["active"])


def _budget_out(budget: dict[str, Any]) -> BudgetOut:
    return BudgetOut(
        union_id=budget["union_id"],
        year=budget["year"],
        cap_fen=budget["cap_fen"],
        members=[MemberBudgetOut(**m) for m in budget["members"]],
    )


def _branch_of(request: Request) -> int:
    """The buyer's branch."""
    union_id = getattr(request.user, "union_id", None)
    if union_id is None:
        raise DomainError("forbidden", "this account is not attached to a branch")
    return union_id


# --- admin: the union tree, the cap policy, targets ------------------------------


class AdminUnionController(Controller):
    path = "/api/admin/unions"
    dependencies = PAGINATION

    @post("/")
    async def create(self, data: JSONBody[UnionIn]) -> UnionOut:
        return _union_out(await unions.create_union(data.code, data.name, data.level, data.parent_code))

    @get("/")
    async def index(
        self,
        page: Paging,
        parent_id: QueryId = None,
        level: Annotated[LevelName | None, QueryParameter()] = None,
    ) -> UnionList:
        items, total = await unions.list_unions(parent_id=parent_id, level=level, limit=page.limit, offset=page.offset)
        return UnionList(items=[_union_out(u) for u in items], total=total)

    @put("/{union_id:int}/approval", opt={"problems": (409,)})  # invalid_state: not a branch
    async def set_approval(self, request: Request, union_id: PathId, data: JSONBody[ApprovalRuleIn]) -> ApprovalRuleOut:
        """A branch's approval rule (工会审批): its orders above `required_above_fen` wait for its approver."""
        rule = await approval_rules.set_rule(
            union_id, data.required_above_fen, actor_id=request.user.id, at=request.app.state.clock()
        )
        return _rule_out(rule)

    @get("/{union_id:int}/approval", opt={"problems": (409,)})
    async def get_approval(self, union_id: PathId) -> ApprovalRuleOut:
        return _rule_out(await approval_rules.get_rule(union_id))


def _rule_out(rule: dict[str, Any]) -> ApprovalRuleOut:
    history = [
        ApprovalRuleChangeOut(
            previous_above_fen=c["previous_above_fen"],
            required_above_fen=c["required_above_fen"],
            at=local(c["at"]).isoformat(),
            actor=None if c["actor_id"] is None else ActorOut(id=c["actor_id"]),
        )
        for c in rule["history"]
    ]
    return ApprovalRuleOut(
        union_id=rule["union_id"], code=rule["code"], name=rule["name"], required_above_fen=rule["required_above_fen"], history=history
    )


class AdminPolicyController(Controller):
    path = "/api/admin/policy"

    @put("/{year:int}")
    async def set_cap(self, request: Request, year: PathYear, data: JSONBody[PolicyIn]) -> PolicySetOut:
        change = await policy.set_cap(year, data.cap_fen, actor_id=request.user.id, at=request.app.state.clock())
        return PolicySetOut(
            year=change["year"],
            cap_fen=change["cap_fen"],
            previous_cap_fen=change["previous_cap_fen"],
            affected=[AffectedMemberOut(**m) for m in change["affected"]],
        )

    @get("/{year:int}")
    async def get_cap(self, year: PathYear) -> PolicyHistoryOut:
        cap = await policy.get_policy(year)
        history = [
            PolicyChangeOut(
                cap_fen=c["cap_fen"],
                previous_cap_fen=c["previous_cap_fen"],
                at=local(c["at"]).isoformat(),
                actor=None if c["actor_id"] is None else ActorOut(id=c["actor_id"]),
            )
            for c in cap["history"]
        ]
        return PolicyHistoryOut(year=cap["year"], cap_fen=cap["cap_fen"], history=history)


class AdminTargetController(Controller):
    path = "/api/admin/targets"

    @put("/{union_id:int}/{year:int}")
    async def set_target(self, union_id: PathId, year: PathYear, data: JSONBody[TargetIn]) -> TargetOut:
        return TargetOut(**await targets.set_target(union_id, year, data.target_fen))

    @get("/{union_id:int}/{year:int}")
    async def get_target(self, union_id: PathId, year: PathYear) -> TargetOut:
        if await unions.get_union(union_id) is None:
            raise DomainError("not_found", f"union {union_id} does not exist")
        return TargetOut(union_id=union_id, year=year, target_fen=await targets.target_for(union_id, year))


# --- any role: a union and its children ----------------------------------------


class UnionController(Controller):
    path = "/api/unions"

    @get("/{union_id:int}")
    async def detail(self, union_id: PathId) -> UnionDetail:
        union = await unions.union_detail(union_id)
        return UnionDetail(
            id=union["id"],
            code=union["code"],
            name=union["name"],
            level=union["level"],
            parent_id=union["parent_id"],
            children=union["children"],
        )


# --- admin, auditor (its subtree), buyer (its branch): a branch's budget ---------


class UnionBudgetController(Controller):
    path = "/api/unions"

    @get("/{union_id:int}/budget", opt={"problems": (409,)})  # invalid_state: not a branch
    async def budget(self, request: Request, union_id: PathId, year: QueryYear = None) -> BudgetOut:
        user = request.user
        if user.role == "auditor":
            if user.union_id is None or not await unions.is_in_subtree(union_id, user.union_id):
                raise DomainError("forbidden", f"union {union_id} is outside your part of the union tree")
        elif user.role != "admin" and union_id != getattr(user, "union_id", None):
            raise DomainError("forbidden", "a buyer sees its own branch's budget only")
        return _budget_out(await members.branch_budget(union_id, year or ledger.current_year()))


# --- buyer: the branch's members and budget ---------------------------------------


class BranchMemberController(Controller):
    path = "/api/branch/members"
    dependencies = PAGINATION

    @get("/")
    async def index(
        self,
        request: Request,
        page: Paging,
        active: Annotated[bool | None, QueryParameter()] = None,
        q: Annotated[str | None, QueryParameter(max_length=50, pattern=ONE_LINE)] = None,
    ) -> MemberList:
        items, total = await members.list_members(_branch_of(request), active=active, q=q, limit=page.limit, offset=page.offset)
        return MemberList(items=[_member_out(m) for m in items], total=total)

    @post("/")
    async def create(self, request: Request, data: JSONBody[MemberIn]) -> MemberOut:
        return _member_out(await members.create_member(_branch_of(request), data.member_no, data.name))

    @patch("/{member_id:int}")
    async def update(self, request: Request, member_id: PathId, data: JSONBody[MemberPatch]) -> MemberOut:
        member = await members.update_member(
            member_id,
            branch_id=_branch_of(request),
            name=None if data.name is UNSET else data.name,
            active=None if data.active is UNSET else data.active,
        )
        return _member_out(member)

    @post("/import", status_code=200, request_max_body_size=IMPORT_MAX_BYTES, opt={"problems": (400, 413, 415)})
    async def import_csv(self, request: Request) -> ImportOut:
        """`text/csv` (or `application/csv`), UTF-8 with or without BOM, columns `member_no,name`."""
        media_type, _, params = request.headers.get("content-type", "").partition(";")
        if media_type.strip().lower() not in CSV_MEDIA_TYPES:
            raise DomainError(
                "unsupported_media_type",
                f"send the file as text/csv, not {media_type.strip() or 'nothing'}",
                accepted=list(CSV_MEDIA_TYPES),
            )
        charset = _charset(params)
        if charset not in (None, "utf-8", "utf8"):
            raise DomainError("unsupported_media_type", f"the file must be UTF-8, not {charset}", accepted=list(CSV_MEDIA_TYPES))
        result = await members.import_members(_branch_of(request), await request.body())
        return ImportOut(created=result["created"], updated=result["updated"], unchanged=result["unchanged"], errors=[])


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


class BranchBudgetController(Controller):
    path = "/api/branch/budget"

    @get("/")
    async def budget(self, request: Request, year: QueryYear = None) -> BudgetOut:
        return _budget_out(await members.branch_budget(_branch_of(request), year or ledger.current_year()))


ROUTES: dict[str, list] = {
    "admin": [AdminUnionController, AdminPolicyController, AdminTargetController],
    "any": [UnionController],
    "reader": [UnionBudgetController],
    "buyer": [BranchMemberController, BranchBudgetController],
}
