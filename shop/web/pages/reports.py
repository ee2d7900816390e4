"""Reports and audit as pages (admin, auditor): targets with progress bars and a chart, members
near their cap, the ledger and its verification."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from budgets import audit, checks, members, policy, targets, unions, unused
from common.schemas import query_name
from shop.auth import scope
from shop.reports import trail
from shop.web import ui
from shop.web.forms import int_or_none, page_number
from shop.web.pages.admin import _flatten
from shop.web.render import PAGE_SIZE, Page, is_htmx, pager, render, year_of, years_for

# --- reports and audit (admin, auditor) ------------------------------------------------------------------------


def _chart(roots: list[dict]) -> dict[str, Any] | None:
    """The horizontal bar chart at the top (HTML bars): the children of the root (or the roots);
    widths in thousandths of the largest figure."""
    nodes = roots[0]["children"] if len(roots) == 1 and roots[0]["children"] else roots
    if not nodes:
        return None
    scale = max([max(n["spent_fen"], n["target_fen"] or 0) for n in nodes] + [1])
    bars = []
    for n in nodes:
        bars.append(
            {
                "node": n,
                "spent_w": (n["spent_fen"] * 1000) // scale,
                "target_w": ((n["target_fen"] or 0) * 1000) // scale,
                "class": ui.progress_class(n["spent_fen"], n["target_fen"]),
                "label": ui.percent(n["spent_fen"], n["target_fen"]) if n["target_fen"] else "未设目标",
            }
        )
    title = roots[0]["name"] if len(roots) == 1 and roots[0]["children"] else "各工会"
    return {"bars": bars, "title": title}


def _subject(subject: str, role: str) -> dict[str, str | None]:
    """What a trail entry is about, in words, with a link where there is a page for it."""
    kind, _, rest = subject.partition(" ")
    href = f"/orders/{rest}" if kind == "order" and rest.isdigit() else None
    if kind == "policy" and role == "admin":
        href = "/admin/policy"
    return {"subject_text": ui.trail_subject(subject), "href": href}


class ReportPages(Page):
    @get("/reports/targets")
    async def targets(self, request: Request, year: FromQuery[str | None] = None, union_id: FromQuery[str | None] = None) -> Template:
        chosen = year_of(request, year)
        root = await scope.scope_root(request.user, int_or_none(union_id))
        tree = await targets.targets_report(root, chosen)
        rows = _flatten(tree)
        root_union = await unions.get_union(root) if root is not None else None
        parent_link = None
        if root_union and root_union["parent_id"] and (
            request.user.role == "admin" or await unions.is_in_subtree(root_union["parent_id"], request.user.union_id)
        ):
            parent_link = root_union["parent_id"]
        export = urlencode({k: v for k, v in {"year": chosen, "union_id": root}.items() if v is not None})
        return render(
            request,
            "reports_targets.html",
            rows=rows,
            chart=_chart(tree),
            year=chosen,
            years=years_for(request),
            cap_fen=await policy.cap_for_year(chosen),
            root_union=root_union,
            parent_link=parent_link,
            export=export,
        )

    @get("/reports/unused")
    async def unused(self, request: Request, year: FromQuery[str | None] = None, union_id: FromQuery[str | None] = None) -> Template:
        """The year-end push: per branch (rolled up the tree) the members with quota left and how
        much; the members themselves are in the export."""
        chosen = year_of(request, year)
        root = await scope.scope_root(request.user, int_or_none(union_id))
        tree = await unused.unused_tree(root, chosen, with_members=False)
        root_union = await unions.get_union(root) if root is not None else None
        export = urlencode({k: v for k, v in {"year": chosen, "union_id": root}.items() if v is not None})
        return render(
            request,
            "reports_unused.html",
            rows=_flatten([tree]),
            year=chosen,
            years=years_for(request),
            root_union=root_union,
            export=export,
        )

    @get("/audit/members")
    async def audit_members(
        self, request: Request, year: FromQuery[str | None] = None, min_ratio: FromQuery[str | None] = None, page: FromQuery[str | None] = None
    ) -> Template:
        chosen = year_of(request, year)
        ratios = {"0": "全部会员", "0.5": "50% 以上", "0.8": "80% 以上", "0.9": "90% 以上", "1": "100%（已用满）"}
        ratio = min_ratio if min_ratio in ratios else "0.9"
        number = page_number(page)
        root = await scope.scope_root(request.user, None)
        items, total = await audit.audit_members(root, chosen, float(ratio), PAGE_SIZE, (number - 1) * PAGE_SIZE)
        export = urlencode({"year": chosen, "min_ratio": ratio})
        return render(
            request,
            "audit_members.html",
            items=items,
            pager=pager(total, number),
            year=chosen,
            years=years_for(request),
            ratio=ratio,
            ratios=ratios,
            export=export,
        )

    @get("/audit/ledger")
    async def ledger(
        self,
        request: Request,
        member: Annotated[str | None, query_name(50)] = None,
        member_id: FromQuery[str | None] = None,
        order_id: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        year: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:
        """The ledger, filtered by member (number or name, as people know them), order, kind, year."""
        root = await scope.scope_root(request.user, None)
        member_text = (member or "").strip()[:50]
        chosen = int_or_none(member_id)
        matches: list[dict] = []
        if member_text and not chosen:
            matches = await audit.find_members(root, member_text)
            if len(matches) == 1:
                chosen = matches[0]["member_id"]
        filters = {
            "member_id": chosen,
            "order_id": int_or_none(order_id),
            "kind": kind if kind in ui.LEDGER_KINDS else None,
            "year": int_or_none(year, checks.YEAR_MIN, checks.YEAR_MAX),
        }
        number = page_number(page)
        if member_text and not chosen:  # nobody, or several: no entries until one is chosen
            items, total = [], 0
        else:
            items, total = await audit.ledger_page(root, limit=50, offset=(number - 1) * 50, **filters)
        by_id = await members.members_by_id(sorted({e["member_id"] for e in items} | ({chosen} if chosen else set())))
        if chosen and not member_text and chosen in by_id:
            member_text = by_id[chosen]["member_no"]
        export = urlencode({k: v for k, v in filters.items() if v is not None})
        return render(
            request,
            "audit_ledger.html",
            items=items,
            members=by_id,
            pager=pager(total, number, 50),
            filters=filters,
            member_text=member_text,
            matches=matches if len(matches) != 1 else [],
            searched=bool(member_text) and not chosen,
            kinds=ui.LEDGER_KINDS,
            years=years_for(request),
            export=export,
        )

    @get("/audit/trail")
    async def audit_trail(self, request: Request, action: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        """The admin's trail: who confirmed, refunded, reviewed, changed a cap or an account."""
        action = action if action in ui.TRAIL_ACTIONS else None
        root = await scope.scope_root(request.user, None)
        prefix = await unions.subtree_prefix(root) if root is not None else None
        number = page_number(page)
        items, total = await trail.trail(prefix=prefix, action=action, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        rows = [{**item, **_subject(item["subject"], request.user.role), "said": ui.trail_detail(item["action"], item["detail"])} for item in items]
        return render(
            request,
            "audit_trail.html",
            rows=rows,
            pager=pager(total, number),
            action=action or "",
            actions=ui.TRAIL_ACTIONS,
            export=urlencode({"action": action} if action else {}),
        )

    @get("/audit/ledger/verify")
    async def verify(self, request: Request, year: FromQuery[str | None] = None) -> Template:
        chosen = int_or_none(year, checks.YEAR_MIN, checks.YEAR_MAX)
        root = await scope.scope_root(request.user, None)
        result = await audit.verify_scope(root, chosen)
        template = "_verify.html" if is_htmx(request) else "verify.html"
        return render(request, template, result=result, year=chosen)
