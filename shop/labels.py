"""Chinese names of the shop's states and actions, keyed by the same StrEnums the tables and
schemas use: one word for each thing, shared by the pages (`shop/web/ui.py`) and the
exports (`shop/reports/api.py`). A new state without a name fails here, at import."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Callable

from budgets.states import LedgerKind, Level
from catalog.tables import ProductStatus
from shop.auth.tables import AccountAction, Role
from shop.fulfilment.states import AfterSaleStatus, InvoiceStatus, ShipmentStatus
from shop.orders.states import ApprovalStatus, OrderAction, OrderStatus, RefundStatus


def _labels(enum: type[StrEnum], labels: dict[Any, str]) -> dict[str, str]:
    missing = set(enum) - set(labels)
    if missing:
        raise RuntimeError(f"no label for {sorted(missing)}")
    return {str(k): v for k, v in labels.items()}


ROLE_NAMES = _labels(Role, {Role.admin: "管理员", Role.buyer: "基层工会采购员", Role.supplier: "供应商", Role.auditor: "审计", Role.approver: "工会审批人"})
ORDER_STATES = _labels(
    OrderStatus,
    {
        OrderStatus.pending_approval: "待审批",
        OrderStatus.pending_payment: "待付款",
        OrderStatus.paid: "已付款",
        OrderStatus.cancelled: "已取消",
        OrderStatus.expired: "已过期",
        OrderStatus.partially_refunded: "部分退款",
        OrderStatus.refunded: "已退款",
    },
)
PRODUCT_STATES = _labels(
    ProductStatus,
    {
        ProductStatus.draft: "草稿",
        ProductStatus.pending_review: "待审核",
        ProductStatus.listed: "已上架",
        ProductStatus.rejected: "已驳回",
        ProductStatus.delisted: "已下架",
    },
)
ORDER_ACTIONS = _labels(
    OrderAction,
    {
        OrderAction.placed: "下单",
        OrderAction.approved: "审批通过",
        OrderAction.rejected: "审批驳回",
        OrderAction.cancelled: "取消",
        OrderAction.expired: "超时关闭",
        OrderAction.paid: "在线支付成功",
        OrderAction.transfer_confirmed: "确认转账到账",
        OrderAction.late_payment: "逾期到账（待退款）",
        OrderAction.refunded: "退款",
        OrderAction.shipped: "发货",
        OrderAction.received: "确认收货",
        OrderAction.after_sale_opened: "申请售后",
        OrderAction.after_sale_accepted: "售后同意",
        OrderAction.after_sale_rejected: "售后驳回",
        OrderAction.invoice_issued: "开具发票",
        OrderAction.invoice_accepted: "发票确认",
        OrderAction.invoice_rejected: "发票退回",
    },
)
SHIPMENT_STATES = _labels(
    ShipmentStatus,
    {
        ShipmentStatus.awaiting_shipment: "待发货",
        ShipmentStatus.shipped: "已发货",
        ShipmentStatus.received: "已收货",
        ShipmentStatus.cancelled: "已取消",
    },
)
AFTER_SALE_STATES = _labels(
    AfterSaleStatus, {AfterSaleStatus.open: "处理中", AfterSaleStatus.refunded: "已退款", AfterSaleStatus.rejected: "已驳回"}
)
INVOICE_STATES = _labels(
    InvoiceStatus, {InvoiceStatus.issued: "待确认", InvoiceStatus.accepted: "已接受", InvoiceStatus.rejected: "已退回"}
)
LEVELS = _labels(Level, {Level.federation: "总工会", Level.district: "区级工会", Level.branch: "基层工会"})
LEDGER_KINDS = _labels(
    LedgerKind, {LedgerKind.hold: "占用", LedgerKind.capture: "扣减", LedgerKind.release: "释放", LedgerKind.refund: "退回"}
)
REFUND_STATES = _labels(
    RefundStatus,
    {RefundStatus.pending: "处理中", RefundStatus.succeeded: "已退款", RefundStatus.owed: "待退（转账）", RefundStatus.failed: "失败"},
)
APPROVAL_STATES = _labels(
    ApprovalStatus,
    {
        ApprovalStatus.pending: "待审批",
        ApprovalStatus.approved: "已通过",
        ApprovalStatus.rejected: "已驳回",
        ApprovalStatus.withdrawn: "已撤回",
        ApprovalStatus.expired: "超时关闭",
    },
)
PROVIDERS = {"transfer": "对公转账", "stripe": "在线支付"}

# the admin's trail (`shop/reports/trail.py`): order events by a person, cap changes,
# listing reviews and account changes
_ACCOUNT_ACTIONS = _labels(
    AccountAction,
    {
        AccountAction.created: "创建账号",
        AccountAction.deactivated: "停用账号",
        AccountAction.activated: "启用账号",
        AccountAction.password_reset: "重置密码",
        AccountAction.password_changed: "修改密码",
    },
)
TRAIL_ACTIONS = {
    OrderAction.transfer_confirmed.value: "确认转账到账",
    OrderAction.late_payment.value: "登记逾期到账",
    OrderAction.refunded.value: "退款",
    OrderAction.approved.value: "审批通过订单",
    OrderAction.rejected.value: "驳回订单",
    "approval_rule_changed": "调整审批规则",
    OrderAction.after_sale_accepted.value: "同意售后",
    OrderAction.after_sale_rejected.value: "驳回售后",
    "cap_changed": "调整额度",
    "product_approved": "商品审核通过",
    "product_rejected": "商品审核驳回",
    "product_delisted": "商品下架",
    **{f"user_{k}": v for k, v in _ACCOUNT_ACTIONS.items()},
}

# what `budgets.verification.verify_ledger` finds wrong
VERIFY_PROBLEMS = {
    "entry without a budget row": "流水没有对应的额度记录",
    "chain broken: prev_hash does not match the entry before": "哈希链断裂：与上一条流水的哈希不符",
    "hash does not match the entry's content": "哈希与流水内容不符（流水可能被改动）",
    "replay goes below zero": "按流水重算时余额出现负数",
    "replay does not give the balance": "按流水重算的余额与当前余额不符",
    "chain head or entry count does not match the budget row": "链尾哈希或流水条数与额度记录不符",
}


# --- what the domain writes in English, said in Chinese ----------------------------------


def _yuan(fen: int) -> str:
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{'-' if fen < 0 else ''}¥{whole:,}.{cents:02d}"


# An order event's detail as the domain writes it (anything else: shown as it is).
_EVENT_DETAILS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^(\d+) fen for (\d+) member\(s\)$"), lambda m: f"{_yuan(int(m[1]))}，由 {m[2]} 位会员分摊"),
    (re.compile(r"^refund #(\d+): (\d+) fen \((\w+)\)$"), lambda m: f"第 {m[1]} 笔退款 {_yuan(int(m[2]))}（{REFUND_STATES.get(m[3], m[3])}）"),
    (re.compile(r"^shipment (\d+): received automatically after (\d+) days$"), lambda m: f"包裹 #{m[1]}：发货 {m[2]} 天后自动确认收货"),
    (re.compile(r"^shipment (\d+): (.+)$"), lambda m: f"包裹 #{m[1]}：{m[2]}"),
    (re.compile(r"^shipment (\d+)$"), lambda m: f"包裹 #{m[1]}"),
    (re.compile(r"^after-sale (\d+): (\d+) fen: (.*)$", re.S), lambda m: f"售后 #{m[1]}：{_yuan(int(m[2]))}，原因：{m[3]}"),
    (re.compile(r"^after-sale (\d+): refund #(\d+) of (\d+) fen$"), lambda m: f"售后 #{m[1]}：第 {m[2]} 笔退款 {_yuan(int(m[3]))}"),
    (re.compile(r"^after-sale (\d+): (.*)$", re.S), lambda m: f"售后 #{m[1]}：{m[2]}"),
    (re.compile(r"^transfer (\w+)$"), lambda m: f"转账附言 {m[1]}"),
    (re.compile(r"^hold ran out$"), lambda m: "付款期限已过，额度和库存已释放"),
    (re.compile(r"^payment_unavailable$"), lambda m: "支付服务无法连接，订单已取消"),
    (re.compile(r"^checkout\.session\.(expired|async_payment_failed)$"), lambda m: "在线支付未完成"),
]


def event_detail(detail: str | None) -> str:
    """An order event's detail for people; Stripe's ids and such stay out of sight."""
    if not detail:
        return ""
    for pattern, say in _EVENT_DETAILS:
        if match := pattern.match(detail):
            return say(match)
    return "" if detail.startswith(("cs_", "pi_", "evt_")) else detail


def trail_subject(subject: str) -> str:
    """What a trail entry is about (`order 5`, `policy 2026`, `product 3 title`, `user name`)."""
    kind, _, rest = (subject or "").partition(" ")
    if kind == "order" and rest.isdigit():
        return f"订单 #{rest}"
    if kind == "policy":
        return f"{rest} 年额度"
    if kind == "product":
        number, _, title = rest.partition(" ")
        return f"商品 {title or number}"
    if kind == "user":
        return f"账号 {rest}"
    return subject


_CAP = re.compile(r"^(\d+|\?) -> (\d+) fen$")
_NEW_ACCOUNT = re.compile(r"^(\w+)(?:, union \d+)?(?:, supplier \d+)?$")  # the role; the ids are the shop's own


def trail_detail(action: str, detail: str | None) -> str:
    if action == "cap_changed" and (match := _CAP.match(detail or "")):
        return f"{_yuan(int(match[1])) if match[1].isdigit() else '—'} → {_yuan(int(match[2]))}"
    if action == "user_created" and (match := _NEW_ACCOUNT.match(detail or "")) and match[1] in ROLE_NAMES:
        return ROLE_NAMES[match[1]]
    return event_detail(detail)
