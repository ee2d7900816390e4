"""What the pages show: yuan from fen, Chinese names for states and roles, refusals
explained in Chinese. No floats near money: fen are integers, yuan are text."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from common.clock import SHANGHAI
from common.money import yuan_text
from shop.labels import (  # noqa: F401  (the pages' names for states, one word for each thing)
    AFTER_SALE_STATES,
    APPROVAL_STATES,
    INVOICE_STATES,
    LEDGER_KINDS,
    LEVELS,
    ORDER_ACTIONS,
    ORDER_STATES,
    PRODUCT_STATES,
    PROVIDERS,
    REFUND_STATES,
    ROLE_NAMES,
    SHIPMENT_STATES,
    TRAIL_ACTIONS,
    VERIFY_PROBLEMS,
    event_detail,
    trail_detail,
    trail_subject,
)


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
    return "" if fen is None else yuan_text(fen)


_PLAIN = re.compile(r"\d{1,12}(?:\.\d+)?")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # thousands separated: 1,234.50


def read_yuan(text: str | None) -> tuple[int | None, str | None]:
    """An amount of yuan as people type it -> (fen, None), or (None, what is wrong, in Chinese).

    Understood exactly: "88", "88.5", "45.5元", "¥1,234.50", full-width digits and signs
    ("￥４５"). A comma only separates thousands (groups of three), so "45,00" or "¥45,00" is
    refused rather than guessed (it is not 4500 yuan); more than two decimals are refused."""
    if text is None:
        return None, "请填写金额"
    cleaned = unicodedata.normalize("NFKC", str(text)).strip()
    cleaned = cleaned.removeprefix("¥").strip().removesuffix("元").strip()
    if not cleaned:
        return None, "请填写金额"
    if "," in cleaned and not _GROUPED.fullmatch(cleaned):
        return None, "逗号只能用来分隔千位（如 1,234.50）；小数请用小数点，如 45.00"
    plain = cleaned.replace(",", "")
    if not _PLAIN.fullmatch(plain):
        return None, "请填写数字金额，如 88 或 88.50"
    whole, _, cents = plain.partition(".")
    if len(cents) > 2:
        return None, "金额最多两位小数（到分）"
    return int(whole) * 100 + int(cents.ljust(2, "0")), None


def parse_yuan(text: str | None) -> int | None:
    """ "88", "88.5", "¥1,088.50" -> fen; None when it is not exactly an amount of yuan."""
    return read_yuan(text)[0]


def price_change_pct(old_fen: int, new_fen: int) -> int:
    """How far a price moved, in whole percent of the old one (rounded towards zero)."""
    return int((new_fen - old_fen) * 100 / old_fen) if old_fen else 0


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
    "phone": "电话",
    "address": "地址",
    "address_id": "收货地址",
    "tax_no": "纳税人识别号",
    "carrier": "快递公司",
    "tracking_no": "运单号",
    "allocations": "分摊金额",
    "line_id": "商品",
    "number": "发票号码",
    "issued_on": "开票日期",
    "amount_fen": "金额",
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
    (re.compile(r"^not UTF-8 or GBK text.*$"), "无法识别文件编码：请直接上传 Excel 文件（.xlsx），或另存为“CSV UTF-8”"),
    (re.compile(r"^not a readable Excel workbook.*$"), "无法读取这个 Excel 文件：请用 Excel 另存为 .xlsx 后重试"),
    (re.compile(r"^a header row must be exactly 会员编号,姓名.*$"), "表头必须是“会员编号,姓名”两列（可下载模板）"),
    (re.compile(r"^not valid CSV: (.*)$"), r"CSV 格式错误：\1"),
    (re.compile(r"^a header row must be exactly member_no,name$"), "表头必须是 member_no,name"),
    (re.compile(r"^more than (\d+) members in one file$"), r"一个文件最多 \1 名会员"),
    (re.compile(r"^expected 2 columns \(member_no,name\), found (\d+)$"), r"应为 2 列（会员编号、姓名），实际为 \1 列"),
    (re.compile(r"^member_no is empty$"), "会员编号为空"),
    (re.compile(r"^member_no '([^']*)' must be .*$"), r"会员编号“\1”只能由 1–32 位字母、数字、_ 或 - 组成"),
    (re.compile(r"^member_no '([^']*)' already appears on line (\d+)$"), r"会员编号“\1”与第 \2 行重复"),
    (re.compile(r"^member_no '([^']*)' is already in this branch$"), r"会员编号“\1”已存在"),
    (re.compile(r"^name must not be empty$"), "姓名为空"),
    (re.compile(r"^name must be at most (\d+) characters$"), r"姓名最多 \1 个字"),
    (re.compile(r"^name must not contain control characters$"), "姓名含有不可见的控制字符"),
    (re.compile(r"^the file has no members$"), "文件中没有会员"),
    (re.compile(r"^does not match the order's transfer reference$"), "与订单不一致"),
    (re.compile(r"^reference: does not match the order's transfer reference$"), "转账附言与订单不一致"),
    (re.compile(r"^the supplier is not certified for region .*$"), "该供应商没有此产地的认证"),
    (re.compile(r"^an order that is (\w+) cannot be (.+)$"), "订单当前为“{state}”，不能{action}"),
    (re.compile(r"^a shipment that is (\w+) cannot be (shipped|received)$"), "包裹当前为“{shipment}”，不能{verb}"),
    (re.compile(r"^an after-sales request that is (\w+) cannot be (accepted|rejected)$"), "售后申请当前为“{sale}”，不能{verb}"),
    (re.compile(r"^this request was accepted and its refund is under way$"), "该申请已同意，退款正在处理中，不能再驳回"),
    (re.compile(r"^more than is neither refunded nor already asked for would be taken back$"), "申请数量超过了可申请的数量（已退或已在其他售后申请中的不能再申请）"),
    (re.compile(r"^more than is left on the line\(s\) would be refunded$"), "退款数量超过了该商品剩余可退的数量"),
    (re.compile(r"^nothing is left to refund on this order$"), "该订单已没有可退的金额"),
    (re.compile(r"^refund #(\d+) of (\d+) fen is still pending.*$"), r"第 \1 笔退款仍在等待支付机构处理，请先完成它"),
    (re.compile(r"^the payment provider refused the refund.*$"), "支付机构拒绝了退款，未退任何款项"),
    (re.compile(r"^the payment provider could not be reached; the refund is pending.*$"), "暂时无法连接支付机构，退款处理中：请稍后再点一次完成它"),
    (re.compile(r"^only an admin, or the supplier of every line in it, decides this request$"), "只有管理员或申请中全部商品的供应商可以处理"),
    (re.compile(r"^this shipment is another supplier's$"), "这是其他供应商的包裹"),
    (re.compile(r"^this shipment is for another branch$"), "这是其他单位的包裹"),
    (re.compile(r"^is not a mainland mobile number.*$"), "不是有效的电话号码：请填写 11 位手机号，或带区号的固定电话（如 020-12345678）"),
    (re.compile(r"^must not be blank$"), "不能为空"),
    (re.compile(r"^make another address the default instead.*$"), "请把另一个地址设为默认（本单位始终保留一个默认地址）"),
    (re.compile(r"^another default address was set at the same moment.*$"), "另一个默认地址刚刚被设置，请重试"),
    (re.compile(r"^this address belongs to another branch$"), "该地址属于其他单位"),
    (re.compile(r"^is not a line of this order$"), "不是该订单的商品"),
    (re.compile(r"^appears more than once$"), "重复出现"),
    (re.compile(r"^the allocations add up to (\d+) fen, the order's total is (\d+) fen$"), "分摊金额合计与订单金额不一致"),
    (re.compile(r"^cannot (\w+) a product that is (\w+)$"), "商品当前为“{pstate}”，不能{paction}"),
    (re.compile(r"^stock is (\d+) and a change of ([+-]\d+) would take it below 0$"), r"当前库存为 \1（打开页面后已减少），按您的修改（\2）将小于 0，未保存"),
    (re.compile(r"^stock is (\d+) and a change of ([+-]\d+) would take it above (\d+)$"), r"当前库存为 \1，按您的修改（\2）将超过 \3，未保存"),
    (re.compile(r"^member\(s\) \[.*\] are inactive.*$"), "所选会员中有已停用的会员"),
    (re.compile(r"^does not match the current password$"), "不正确"),
    (re.compile(r"^must be at least (\d+) characters$"), r"至少 \1 位"),
    (re.compile(r"^an admin cannot deactivate their own account$"), "不能停用自己的账号"),
    (re.compile(r"^order \d+'s time for approval ran out; it has expired$"), "审批期限已过，订单已自动关闭，预留的额度和库存已释放"),
    (re.compile(r"^nobody approves an order they placed themselves$"), "不能审批自己提交的订单"),
    (re.compile(r"^only an approver of the order's branch decides it$"), "只有订单所属基层工会的审批人可以审批"),
    (re.compile(r"^an invoice must be a PDF, OFD, PNG or JPEG file.*$"), "发票须为 PDF、OFD、PNG 或 JPEG 文件（按文件内容识别，与文件名无关）"),
    (re.compile(r"^an invoice number is 8 to 20 letters and digits$"), "应为 8 到 20 位字母或数字"),
    (re.compile(r"^is not a date written YYYY-MM-DD$"), "请填写有效日期（年-月-日，2000 年以后）"),
    (re.compile(r"^is after today$"), "不能晚于今天"),
    (re.compile(r"^must equal the shipment's amount_fen, (\d+) .*$"), "须等于包裹当前金额 {fen}（商品金额减去退款）"),
    (re.compile(r"^shipment \d+ already has invoice \d+ \((\w+)\)$"), "该包裹已有{invoice}的发票，不能再上传"),
    (re.compile(r"^invoice number (\w+) is already on shipment (\d+)$"), r"发票号码 \1 已用于包裹 #\2"),
    (re.compile(r"^shipment \d+ has an invoice, or number \w+ is in use$"), "该包裹已有发票，或该发票号码已在使用"),
    (re.compile(r"^a cancelled shipment \(every line refunded\) is not invoiced$"), "包裹已取消（全部退款），无需开票"),
    (re.compile(r"^an invoice that is (\w+) cannot be (accepted|rejected)$"), "发票当前为“{invoice}”，不能{verb}"),
    (re.compile(r"^this invoice is for another branch$"), "这是其他单位的发票"),
]
_ACTIONS = {
    "cancelled": "取消",
    "paid": "确认收款",
    "refunded": "退款",
    "shipped": "发货",
    "received": "确认收货",
    "given an after-sales request": "申请售后",
    "approved": "审批通过",
    "rejected": "驳回",
}
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
                text = replacement.format(state=ORDER_STATES.get(match[1], match[1]), action=_ACTIONS.get(match[2], "进行此操作"))
            elif "{shipment}" in replacement:
                text = replacement.format(shipment=SHIPMENT_STATES.get(match[1], match[1]), verb={"shipped": "发货", "received": "确认收货"}[match[2]])
            elif "{sale}" in replacement:
                text = replacement.format(sale=AFTER_SALE_STATES.get(match[1], match[1]), verb={"accepted": "同意", "rejected": "驳回"}[match[2]])
            elif "{fen}" in replacement:
                text = replacement.format(fen=yuan(int(match[1])))
            elif "{invoice}" in replacement:
                verb = {"accepted": "接受", "rejected": "退回"}.get(match[2] if match.re.groups > 1 else "", "")
                text = replacement.format(invoice=INVOICE_STATES.get(match[1], match[1]), verb=verb)
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
        "shipment_state": lambda s: SHIPMENT_STATES.get(s, s),
        "after_sale_state": lambda s: AFTER_SALE_STATES.get(s, s),
        "invoice_state": lambda s: INVOICE_STATES.get(s, s),
        "trail_action": lambda s: TRAIL_ACTIONS.get(s, s),
        "event_detail": event_detail,
        "verify_problem": lambda s: VERIFY_PROBLEMS.get(s, s),
        "glyph": lambda s: CATEGORY_GLYPHS.get(s, "品"),
    }


def globals_() -> dict[str, Any]:
    return {"percent": percent, "bar_width": bar_width, "progress_class": progress_class}
