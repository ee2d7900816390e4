"""What the pages show: yuan from fen, Chinese names for states and roles, refusals
explained in Chinese. No floats near money: fen are integers, yuan are text."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from budgets.states import LedgerKind, Level
from catalog.tables import ProductStatus
from common.clock import SHANGHAI
from shop.auth.tables import Role
from shop.fulfilment.states import AfterSaleStatus, ShipmentStatus
from shop.orders.states import OrderAction, OrderStatus, RefundStatus


def _labels(enum: type[StrEnum], labels: dict[Any, str]) -> dict[str, str]:
    missing = set(enum) - set(labels)
    if missing:
        raise RuntimeError(f"no page label for {sorted(missing)}")
    return {str(k): v for k, v in labels.items()}


# Page labels, keyed by the same StrEnums the tables and schemas use (a new state
# without a label fails here, at import, not on a page).
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
PROVIDERS = {"transfer": "对公转账", "stripe": "在线支付"}
CATEGORY_GLYPHS = {
    "fruit": "果",
    "tea": "茶",
    "grain_oil": "粮",
    "dried": "干",
    "aquatic": "鱼",
    "meat_egg": "禽",
    "herbal": "药",
    "snack": "食",
    "other": "品",
}
REFUND_STATES = _labels(
    RefundStatus,
    {RefundStatus.pending: "处理中", RefundStatus.succeeded: "已退款", RefundStatus.owed: "待退（转账）", RefundStatus.failed: "失败"},
)


# --- money ---------------------------------------------------------------------------


def yuan(fen: int | None, symbol: bool = True) -> str:
    """12345 -> "¥123.45"; thousands separated: 123456789 -> "¥1,234,567.89"."""
    if fen is None:
        return "—"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{'¥' if symbol else ''}{whole:,}.{cents:02d}"


def yuan_short(fen: int | None) -> str:
    """Large sums the way people say them: "¥1.23亿", "¥4,567.89万", "¥880.00"."""
    if fen is None:
        return "—"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    if fen >= 100 * 10**8:  # 1亿 yuan
        hundredths = fen // 10**8  # hundredths of 亿
        return f"{sign}¥{hundredths // 100:,}.{hundredths % 100:02d}亿"
    if fen >= 100 * 10**4:  # 1万 yuan
        hundredths = fen // 10**4
        return f"{sign}¥{hundredths // 100:,}.{hundredths % 100:02d}万"
    return sign + yuan(fen)


def yuan_plain(fen: int | None) -> str:
    """For form fields: 8800 -> "88.00" (no symbol, no separators)."""
    if fen is None:
        return ""
    fen = int(fen)
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


_YUAN = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")


def parse_yuan(text: str | None) -> int | None:
    """ "88", "88.5", "¥1,088.50" -> fen; None when it is not an amount of yuan."""
    if text is None:
        return None
    cleaned = text.strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    match = _YUAN.fullmatch(cleaned)
    if not match:
        return None
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def percent(part: int, whole: int | None) -> str:
    """A share as a percentage with one decimal, from integers: (1, 3) -> "33.3%"."""
    if not whole:
        return "—"
    tenths = (int(part) * 1000 + int(whole) // 2) // int(whole)
    return f"{tenths // 10}.{tenths % 10}%"


def bar_width(part: int, whole: int | None) -> int:
    """A bar's width in whole percent, 0..100."""
    if not whole or whole <= 0:
        return 0
    return max(0, min(100, (int(part) * 100) // int(whole)))


def progress_class(part: int, whole: int | None) -> str:
    """The colour of a progress bar: none, low, mid, good, done."""
    if not whole:
        return "none"
    ratio_pct = int(part) * 100 // int(whole)
    if ratio_pct >= 100:
        return "done"
    if ratio_pct >= 60:
        return "good"
    if ratio_pct >= 30:
        return "mid"
    return "low"


# --- time ----------------------------------------------------------------------------


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(SHANGHAI).strftime(fmt)


# --- refusals in Chinese ---------------------------------------------------------------

CODE_MESSAGES = {
    "validation_failed": "填写的内容有误",
    "unauthenticated": "请先登录",
    "forbidden": "没有权限进行此操作",
    "not_found": "找不到该记录",
    "cap_exceeded": "超出年度额度：以下会员分摊的金额超过了其本年度剩余额度，订单未提交",
    "out_of_stock": "库存不足，订单未提交",
    "not_listed": "有商品已下架或尚未上架，订单未提交",
    "invalid_state": "当前状态下不能进行此操作",
    "idempotency_conflict": "该订单已提交过，请刷新页面后再下单",
    "conflict": "与已有数据冲突",
    "rate_limited": "尝试次数过多，请一分钟后再试",
    "payment_unavailable": "支付服务暂时无法连接，订单已取消，额度未被占用",
    "unavailable": "服务暂时不可用，请稍后再试",
    "payload_too_large": "文件太大",
    "unsupported_media_type": "文件格式不支持",
    "internal_error": "系统出错了，请稍后再试",
}

FIELD_NAMES = {
    "title": "商品名称",
    "region": "产地",
    "category": "品类",
    "unit": "单位",
    "price_fen": "价格",
    "stock": "库存",
    "stock_delta": "库存增减",
    "description": "商品介绍",
    "member_no": "会员编号",
    "name": "姓名",
    "members": "会员",
    "lines": "商品",
    "reason": "原因",
    "reference": "转账附言",
    "cap_fen": "额度",
    "target_fen": "目标",
    "year": "年度",
    "body": "内容",
    "file": "文件",
    "password": "密码",
    "old_password": "当前密码",
    "new_password": "新密码",
}

# The services' English messages that people meet most, in Chinese (everything else is
# shown as it is, after the Chinese summary of its code).
_TRANSLATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^the file is empty$"), "文件是空的"),
    (re.compile(r"^the file is larger than (\d+) MB$"), r"文件超过 \1 MB"),
    (re.compile(r"^a photo must be a JPEG, PNG or WebP image.*$"), "图片须为 JPEG、PNG 或 WebP 格式（按文件内容识别，与文件名无关）"),
    (re.compile(r"^the image is (\d+)×(\d+) pixels, more than (\d+) megapixels$"), r"图片为 \1×\2 像素，超过 \3 百万像素"),
    (re.compile(r"^the image is more than (\d+) megapixels$"), r"图片超过 \1 百万像素"),
    (re.compile(r"^the file cannot be read as a (\w+) image$"), r"文件无法作为 \1 图片读取，可能已损坏"),
    (re.compile(r"^send the file as the multipart/form-data field .*$"), "请选择要上传的文件"),
    (re.compile(r"^the body is not readable multipart/form-data.*$"), "上传的内容无法读取，请重新选择文件"),
    (re.compile(r"^product \d+ already has (\d+) photos; remove one first$"), r"每个商品最多 \1 张图片，请先删除一张"),
    (re.compile(r"^product \d+ has no photo \d+$"), "该图片已删除"),
    (re.compile(r"^not UTF-8 text.*$"), "不是 UTF-8 编码：请在 Excel 中另存为“CSV UTF-8”"),
    (re.compile(r"^not valid CSV: (.*)$"), r"CSV 格式错误：\1"),
    (re.compile(r"^a header row must be exactly member_no,name$"), "表头必须是 member_no,name"),
    (re.compile(r"^more than (\d+) members in one file$"), r"一个文件最多 \1 名会员"),
    (re.compile(r"^expected 2 columns \(member_no,name\), found (\d+)$"), r"应为 2 列（member_no,name），实际为 \1 列"),
    (re.compile(r"^member_no is empty$"), "会员编号为空"),
    (re.compile(r"^member_no '([^']*)' must be .*$"), r"会员编号“\1”只能由 1–32 位字母、数字、_ 或 - 组成"),
    (re.compile(r"^member_no '([^']*)' already appears on line (\d+)$"), r"会员编号“\1”与第 \2 行重复"),
    (re.compile(r"^member_no '([^']*)' is already in this branch$"), r"会员编号“\1”已存在"),
    (re.compile(r"^name must not be empty$"), "姓名为空"),
    (re.compile(r"^name must be at most (\d+) characters$"), r"姓名最多 \1 个字"),
    (re.compile(r"^name must not contain control characters$"), "姓名含有不可见的控制字符"),
    (re.compile(r"^the file has no members$"), "文件中没有会员"),
    (re.compile(r"^does not match the order's transfer reference$"), "与订单的转账附言不一致"),
    (re.compile(r"^reference: does not match the order's transfer reference$"), "转账附言与订单不一致"),
    (re.compile(r"^the supplier is not certified for region .*$"), "该供应商没有此产地的认证"),
    (re.compile(r"^an order that is (\w+) cannot be (cancelled|paid)$"), "订单当前为“{state}”，不能{action}"),
    (re.compile(r"^cannot (\w+) a product that is (\w+)$"), "商品当前为“{pstate}”，不能{paction}"),
    (re.compile(r"^stock is (\d+) and a change of ([+-]\d+) would take it below 0$"), r"当前库存为 \1（打开页面后已减少），按您的修改（\2）将小于 0，未保存"),
    (re.compile(r"^stock is (\d+) and a change of ([+-]\d+) would take it above (\d+)$"), r"当前库存为 \1，按您的修改（\2）将超过 \3，未保存"),
    (re.compile(r"^member\(s\) \[.*\] are inactive.*$"), "所选会员中有已停用的会员"),
    (re.compile(r"^does not match the current password$"), "不正确"),
    (re.compile(r"^must be at least (\d+) characters$"), r"至少 \1 位"),
    (re.compile(r"^an admin cannot deactivate their own account$"), "不能停用自己的账号"),
]
_ACTIONS = {"cancelled": "取消", "paid": "确认收款"}
_PRODUCT_ACTIONS = {"submit": "提交审核", "approve": "通过审核", "reject": "驳回", "delist": "下架", "edit": "修改"}


def translate(message: str) -> str:
    """One English message from a service, in Chinese where it is a known one."""
    parts = [p.strip() for p in str(message).split(";") if p.strip()]
    out = []
    for part in parts:
        text = part
        for pattern, replacement in _TRANSLATIONS:
            match = pattern.match(part)
            if not match:
                continue
            if "{state}" in replacement:
                text = replacement.format(state=ORDER_STATES.get(match[1], match[1]), action=_ACTIONS.get(match[2], match[2]))
            elif "{pstate}" in replacement:
                text = replacement.format(pstate=PRODUCT_STATES.get(match[2], match[2]), paction=_PRODUCT_ACTIONS.get(match[1], match[1]))
            else:
                text = match.expand(replacement)
            break
        out.append(text)
    return "；".join(out)


def explain(exc: Any) -> dict[str, Any]:
    """A domain refusal (DomainError) for a page:
    `{code, title, details: [str], extra}` in Chinese."""
    code = getattr(exc, "code", "internal_error")
    extra = dict(getattr(exc, "extra", {}) or {})
    detail = getattr(exc, "detail", "") or ""
    details: list[str] = []
    if code == "validation_failed" and extra.get("errors"):
        for error in extra["errors"]:
            field = str(error.get("field", ""))
            label = FIELD_NAMES.get(field.split(".")[-1].split("[")[0], field)
            message = translate(str(error.get("message", "")))
            details.append(f"{label}：{message}" if label and label != "内容" else message)
    elif code not in ("cap_exceeded", "out_of_stock", "not_listed") and detail:
        translated = translate(detail)
        if translated != detail:  # only what we can say in Chinese; the rest stays in the log
            details.append(translated)
    return problem(CODE_MESSAGES.get(code, detail or code), *details, code=code, extra=extra)


def problem(title: str, *details: str, code: str = "validation_failed", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a page shows about a refusal (every key always there, for the templates)."""
    return {"code": code, "title": title, "details": list(details), "extra": extra or {}, "over_members": [], "products": []}


VERIFY_PROBLEMS = {
    "entry without a budget row": "流水没有对应的额度记录",
    "chain broken: prev_hash does not match the entry before": "哈希链断裂：与上一条流水的哈希不符",
    "hash does not match the entry's content": "哈希与流水内容不符（流水可能被改动）",
    "replay goes below zero": "按流水重算时余额出现负数",
    "replay does not give the balance": "按流水重算的余额与当前余额不符",
    "chain head or entry count does not match the budget row": "链尾哈希或流水条数与额度记录不符",
}


def filters() -> dict[str, Any]:
    return {
        "yuan": yuan,
        "yuan_plain": yuan_plain,
        "yuan_short": yuan_short,
        "local_time": local_time,
        "order_state": lambda s: ORDER_STATES.get(s, s),
        "order_action": lambda s: ORDER_ACTIONS.get(s, s),
        "product_state": lambda s: PRODUCT_STATES.get(s, s),
        "role_name": lambda s: ROLE_NAMES.get(s, s),
        "level_name": lambda s: LEVELS.get(s, s),
        "ledger_kind": lambda s: LEDGER_KINDS.get(s, s),
        "provider_name": lambda s: PROVIDERS.get(s, s),
        "refund_state": lambda s: REFUND_STATES.get(s, s),
        "verify_problem": lambda s: VERIFY_PROBLEMS.get(s, s),
        "glyph": lambda s: CATEGORY_GLYPHS.get(s, "品"),
    }


def globals_() -> dict[str, Any]:
    return {"percent": percent, "bar_width": bar_width, "progress_class": progress_class}
