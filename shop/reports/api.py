"""Reports and audit over HTTP: targets, regions, distribution lists (发放清单), the
members near their cap, the ledger and its verification, a branch's statement and the
suppliers' monthly settlement (对账) — each as JSON, CSV or XLSX, always inside the caller's
scope (admin: anything; auditor: its subtree; buyer: its branch; a supplier: its settlement).

The figures come from budgets/ (targets.py, audit.py, ledger.py) and, for the reports
over orders, from `shop/reports/queries.py` (regions, distribution lists) and
`shop/reports/settlement.py` (settlement, statement)."""

from __future__ import annotations

from typing import Annotated, Any, AsyncIterator

from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter

from budgets import audit, ledger, members, policy, targets, unions, unused
from budgets.states import Level, LedgerKind
from catalog import suppliers
from common.errors import invalid
from common.pagination import PAGINATION, Paging
from common.schemas import PathId, QueryId
from shop.auth import scope
from shop import labels
from shop.errors import ShopError
from shop.orders import queries as orders
from shop.reports import queries, settlement, trail
from shop.reports.export import Column, Format, export, respond, yuan

Year = Annotated[int | None, QueryParameter(ge=2000, le=2100)]
Month = Annotated[int | None, QueryParameter(ge=1, le=12)]
UnionId = QueryId
ExportFormat = Annotated[Format, QueryParameter(name="format")]


def _year(year: int | None) -> int:
    return year if year is not None else ledger.current_year()


# a member, and the member's share of an order (the 发放清单's columns); members are named by
# their number and name, never by the shop's internal ids
MEMBER_COLUMNS = [Column("member_no", "会员编号"), Column("name", "姓名")]
SHARE_COLUMNS = [Column("amount_fen", "分摊金额(元)", "fen"), Column("refunded_fen", "已退(元)", "fen")]

AUDIT_MEMBER_COLUMNS = [
    Column("union_code", "基层工会"),
    *MEMBER_COLUMNS,
    Column("cap_fen", "年度额度(元)", "fen"),
    Column("spent_fen", "已用(元)", "fen"),
    Column("held_fen", "占用中(元)", "fen"),
    Column("remaining_fen", "剩余(元)", "fen"),
    Column("ratio", "使用率", "ratio"),
    Column("over_cap", "下单时超额", "flag"),
    Column("above_lowered_cap", "高于调低后的额度", "flag"),
]

ENTRY_COLUMNS = [
    Column("seq", "序号", "int"),
    Column("at", "时间", "time"),
    Column("union_code", "基层工会"),
    *MEMBER_COLUMNS,
    Column("year", "年度", "int"),
    Column("order_id", "订单号", "int"),
    Column("kind", "类型", labels=labels.LEDGER_KINDS),
    Column("amount_fen", "金额(元)", "fen"),
    Column("hash", "哈希"),
]

TARGET_COLUMNS = [
    Column("name", "工会"),
    Column("code", "代码"),
    Column("level", "层级", labels=labels.LEVELS),
    Column("members", "会员数", "int"),
    Column("cap_capacity_fen", "额度上限(元)", "fen"),
    Column("spent_fen", "消费帮扶金额(元)", "fen"),
    Column("target_fen", "目标(元)", "fen"),
    Column("progress", "完成率", "ratio"),
    Column("parent_code", "上级代码"),
]


UNUSED_COLUMNS = [
    Column("branch_code", "基层工会"),
    Column("branch_name", "基层工会名称"),
    *MEMBER_COLUMNS,
    Column("remaining_fen", "剩余额度(元)", "fen"),
]


SETTLEMENT_COLUMNS = [
    Column("supplier_id", "供应商ID", "int"),
    Column("supplier_name", "供应商"),
    Column("year", "年", "int"),
    Column("month", "月", "int"),
    Column("paid_fen", "已付(元)", "fen"),
    Column("refunded_fen", "已退(元)", "fen"),
    Column("net_fen", "净额(元)", "fen"),
    Column("invoiced_fen", "已开票(元)", "fen"),
    Column("uninvoiced_fen", "未开票(元)", "fen"),
    Column("shipments", "发货单数", "int"),
]

STATEMENT_COLUMNS = [
    Column("order_id", "订单号"),
    Column("placed_at", "下单时间", "time"),
    Column("paid_at", "支付时间", "time"),
    Column("status", "状态", labels=labels.ORDER_STATES),
    Column("total_fen", "订单金额(元)", "fen"),
    Column("paid_fen", "已付(元)", "fen"),
    Column("refunded_fen", "已退(元)", "fen"),
    Column("net_fen", "净额(元)", "fen"),
    Column("invoices", "发票"),
]


def _statement_rows(body: dict) -> list[dict]:
    """The statement as export rows: one per order, then the year's totals."""
    rows = [
        {
            **o,
            "net_fen": o["paid_fen"] - o["refunded_fen"],
            "invoices": "；".join(
                f"{i['number']} {labels.INVOICE_STATES.get(i['status'], i['status'])} {yuan(i['amount_fen'])}" for i in o["invoices"]
            ),
        }
        for o in body["orders"]
    ]
    total = {"order_id": "合计", "paid_fen": body["paid_fen"], "refunded_fen": body["refunded_fen"], "net_fen": body["net_fen"]}
    return [*rows, {**total, "invoices": f"已开票 {yuan(body['invoiced_fen'])}"}]


def _flatten(nodes: list[dict], parent_code: str = "") -> list[dict]:
    """The tree, parents first, each row naming its parent (the names as they are: no indent)."""
    rows = []
    for node in nodes:
        rows.append({**node, "parent_code": parent_code})
        rows.extend(_flatten(node["children"], node["code"]))
    return rows


def _trail_row(item: dict) -> dict:
    return {
        **item,
        "actor_name": (item["actor"] or {}).get("username", ""),
        "subject": labels.trail_subject(item["subject"]),
        "detail": labels.trail_detail(item["action"], item["detail"]),
    }


async def _one_batch(rows: list[dict]) -> AsyncIterator[list[dict]]:
    yield rows


async def _with_members(batches: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    """Each row with its member's number, name and branch (rows carry only the member's id)."""
    async for batch in batches:
        found = await members.members_by_id({row["member_id"] for row in batch if row.get("member_id")})
        codes = await unions.codes_by_id({m["union_id"] for m in found.values()})
        out = []
        for row in batch:
            member = found.get(row.get("member_id"), {})
            extra = {"member_no": member.get("member_no", ""), "name": member.get("name", ""), "union_code": codes.get(member.get("union_id"), "")}
            out.append({**row, **extra})
        yield out


class ReportController(Controller):
    path = "/api/reports"

    @get("/targets")
    async def targets(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        root = await scope.scope_root(request.user, union_id)
        year = _year(year)
        tree = await targets.targets_tree(root, year)
        body = {**tree, "year": year, "cap_fen": await policy.cap_for_year(year)}
        return await respond(fmt, _flatten([tree]), TARGET_COLUMNS, f"消费帮扶目标完成情况-{year}", body, "目标完成情况")

    @get("/unused")
    async def unused(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        """The members with quota left this year (to be used by 31 December), per branch and
        rolled up the tree; the CSV/XLSX lists the members."""
        root = await scope.scope_root(request.user, union_id)
        year = _year(year)
        if fmt != "json":
            return await export(fmt, unused.member_batches(root, year), UNUSED_COLUMNS, f"剩余额度会员-{year}", "剩余额度")
        tree = await unused.unused_tree(root, year)
        return {**tree, "year": year, "cap_fen": await policy.cap_for_year(year)}

    @get("/regions")
    async def regions(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        root = await scope.scope_root(request.user, union_id)
        year = _year(year)
        items = await queries.regions_report(root, year)
        rows = [
            {"region": r["region"], "region_name": r["region_name"], "federation": f["name"], "spent_fen": f["spent_fen"], "orders": f["orders"]}
            for r in items
            for f in (r["by_federation"] or [{"name": "", "spent_fen": r["spent_fen"], "orders": r["orders"]}])
        ]
        columns = [
            Column("region_name", "帮扶地区"),
            Column("region", "地区代码"),
            Column("federation", "采购方总工会"),
            Column("spent_fen", "金额(元)", "fen"),
            Column("orders", "订单数", "int"),
        ]
        return await respond(fmt, rows, columns, f"帮扶地区采购统计-{year}", items, "按地区")

    @get("/distribution")
    async def distribution(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        root = await scope.scope_root(request.user, union_id)
        year = _year(year)
        columns = [
            Column("branch_code", "基层工会"),
            *MEMBER_COLUMNS,
            Column("order_id", "订单号", "int"),
            Column("paid_at", "支付时间", "time"),
            Column("status", "状态", labels=labels.ORDER_STATES),
            *SHARE_COLUMNS,
        ]
        if fmt != "json":
            return await export(fmt, queries.distribution_batches(root, year), columns, f"发放清单-{year}", "发放清单")
        return await queries.branch_distribution(root, year)


    @get("/statement")
    async def statement(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        """A branch's orders of the year with what was paid, refunded and invoiced, and the totals
        (the branch's buyers: their own; auditors: a branch of their subtree; admins: any branch)."""
        root = await scope.scope_root(request.user, union_id)
        union = await unions.get_union(root) if root is not None else None
        if union is None or union["level"] != Level.branch:
            raise invalid("union_id", "name a branch (基层工会): a statement is one branch's")
        year = _year(year)
        body = await settlement.statement(root, year)
        filename = f"对账单-{union['code']}-{year}"
        return await respond(fmt, _statement_rows(body), STATEMENT_COLUMNS, filename, body, "对账单")


class SettlementController(Controller):
    """What each supplier was paid, refunded and invoiced, month by month (admin: any supplier;
    a supplier: its own)."""

    path = "/api/reports/settlement"

    @get("/")
    async def settlement(
        self, request: Request, year: Year = None, month: Month = None, supplier_id: QueryId = None, fmt: ExportFormat = "json"
    ) -> Any:
        if request.user.role == "supplier":
            if supplier_id is not None and supplier_id != request.user.supplier_id:
                raise ShopError("forbidden", "a supplier sees only its own settlement")
            supplier_id = request.user.supplier_id
        elif supplier_id is not None:
            await suppliers.get_supplier(supplier_id)  # 404 if there is none
        year = _year(year)
        rows = await settlement.settlement(year, month, supplier_id)
        filename = f"供应商结算-{year}" + (f"-{month:02d}" if month else "")
        return await respond(fmt, rows, SETTLEMENT_COLUMNS, filename, rows, "供应商结算")


class OrderDistributionController(Controller):
    path = "/api/orders/{order_id:int}/distribution"

    @get("/")
    async def distribution(self, request: Request, order_id: PathId, fmt: ExportFormat = "json") -> Any:
        await orders.get_order(order_id, request.user)  # 404 / 403 outside the caller's scope
        if request.user.role == "supplier":
            raise ShopError("forbidden", "suppliers do not see members")
        items = await queries.order_distribution(order_id)
        return await respond(fmt, items, [*MEMBER_COLUMNS, *SHARE_COLUMNS], f"发放清单-订单{order_id}", items, "发放清单")


class AuditController(Controller):
    path = "/api/audit"
    dependencies = PAGINATION

    @get("/members")
    async def members(
        self,
        request: Request,
        page: Paging,
        year: Year = None,
        union_id: UnionId = None,
        min_ratio: Annotated[float, QueryParameter(ge=0, le=10)] = 0.9,
        fmt: ExportFormat = "json",
    ) -> Any:
        root = await scope.scope_root(request.user, union_id)
        year = _year(year)
        if fmt != "json":  # an export is the whole list
            return await export(fmt, audit.audit_member_batches(root, year, min_ratio), AUDIT_MEMBER_COLUMNS, f"额度使用审计-{year}", "额度使用")
        items, total = await audit.audit_members(root, year, min_ratio, page.limit, page.offset)
        return {"items": items, "total": total}

    @get("/ledger")
    async def ledger(
        self,
        request: Request,
        page: Paging,
        member_id: QueryId = None,
        order_id: QueryId = None,
        year: Year = None,
        kind: FromQuery[LedgerKind | None] = None,
        union_id: UnionId = None,
        fmt: ExportFormat = "json",
    ) -> Any:
        root = await scope.scope_root(request.user, union_id)
        filters = {"member_id": member_id, "order_id": order_id, "year": year, "kind": kind}
        if fmt != "json":
            return await export(fmt, _with_members(audit.ledger_batches(root, **filters)), ENTRY_COLUMNS, "额度流水", "额度流水")
        items, total = await audit.ledger_page(root, **filters, limit=page.limit, offset=page.offset)
        return {"items": items, "total": total}

    @get("/events")
    async def events(
        self,
        request: Request,
        page: Paging,
        action: Annotated[str | None, QueryParameter(max_length=40, pattern=r"^[a-z_]+$")] = None,
        fmt: ExportFormat = "json",
    ) -> Any:
        """The admin's trail: who confirmed, refunded, created … (admin: all; auditor: its subtree)."""
        if request.user.role not in ("admin", "auditor"):
            raise ShopError("forbidden", "the admin's trail is for admins and auditors")
        root = await scope.scope_root(request.user, None)
        prefix = await unions.subtree_prefix(root) if root is not None else None
        columns = [
            Column("at", "时间", "time"),
            Column("actor_name", "操作人"),
            Column("action", "操作", labels=labels.TRAIL_ACTIONS),
            Column("subject", "对象"),
            Column("detail", "说明"),
        ]
        if fmt != "json":
            batches = trail.trail_batches(prefix=prefix, action=action)
            return await export(fmt, batches, columns, "操作记录", "操作记录", shape=_trail_row)
        items, total = await trail.trail(prefix=prefix, action=action, limit=page.limit, offset=page.offset)
        return {"items": items, "total": total}

    @get("/ledger/verify")
    async def verify(self, request: Request, year: Year = None, union_id: UnionId = None, fmt: ExportFormat = "json") -> Any:
        root = await scope.scope_root(request.user, union_id)
        result = await audit.verify_scope(root, year)
        body = {"ok": result.ok, "entries": result.entries, "member_years": result.member_years, "problems": result.problems}
        columns = [
            Column("union_code", "基层工会"),
            *MEMBER_COLUMNS,
            Column("year", "年度", "int"),
            Column("seq", "序号", "int"),
            Column("problem", "问题", labels=labels.VERIFY_PROBLEMS),
        ]
        if fmt == "json":
            return body
        rows = [row async for batch in _with_members(_one_batch(result.problems)) for row in batch]
        return await respond(fmt, rows, columns, "流水校验", body, "流水校验")


ROUTES = {
    "reader": [ReportController, AuditController],
    "seller": [SettlementController],
    "any": [OrderDistributionController],
}
