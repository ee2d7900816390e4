"""Chinese names of the shop's states and actions, keyed by the same StrEnums the tables and
schemas use: one word for each thing, shared by the pages (`shop/web/ui.py`) and the
exports (`shop/reports/api.py`). A new state without a name fails here, at import."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from budgets.states import LedgerKind, Level
from catalog.tables import ProductStatus
from shop.auth.tables import AccountAction, Role
from shop.fulfilment.states import AfterSaleStatus, ShipmentStatus
from shop.orders.states import OrderAction, OrderStatus, RefundStatus


def _labels(enum: type[StrEnum], labels: dict[Any, str]) -> dict[str, str]:
    missing = set(enum) - set(labels)
    if missing:
        raise RuntimeError(f"no label for {sorted(missing)}")
    return {str(k): v for k, v in labels.items()}


ROLE_NAMES = _labels(Role, {Role.admin: "管理员", Role.buyer: "基层工会采购员", Role.supplier: "供应商", Role.auditor: "审计"})
ORDER_STATES = _labels(
    OrderStatus,
    {
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
LEVELS = _labels(Level, {Level.federation: "总工会", Level.district: "区级工会", Level.branch: "基层工会"})
LEDGER_KINDS = _labels(
    LedgerKind, {LedgerKind.hold: "占用", LedgerKind.capture: "扣减", LedgerKind.release: "释放", LedgerKind.refund: "退回"}
)
REFUND_STATES = _labels(
    RefundStatus,
    {RefundStatus.pending: "处理中", RefundStatus.succeeded: "已退款", RefundStatus.owed: "待退（转账）", RefundStatus.failed: "失败"},
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
    OrderAction.after_sale_accepted.value: "同意售后",
    OrderAction.after_sale_rejected.value: "驳回售后",
    "cap_changed": "调整额度",
    "product_approved": "商品审核通过",
    "product_rejected": "商品审核驳回",
    "product_delisted": "商品下架",
    **{f"user_{k}": v for k, v in _ACCOUNT_ACTIONS.items()},
}
