"""The members' links as the shop hands them out: the link key from the shop's secret, the
URL under `PUBLIC_URL`, a branch's links (the CSV export), an order's members with theirs
(the 签收表) and a link's QR code (segno, inline SVG)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from budgets import links, members
from budgets.tables import Member
from shop.settings import Settings


def key_of(settings: Settings) -> bytes:
    return links.derive_key(settings.secret_key)


def url_of(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/m/{token}"


async def regenerate(member_id: int, branch_id: int, settings: Settings, now: datetime) -> dict[str, Any]:
    """A new link for a member of the caller's branch: `{member_id, member_no, name, url}`."""
    token = await links.regenerate(member_id, branch_id=branch_id, key=key_of(settings), now=now)
    member = await members.get_member(member_id)
    return {"member_id": member_id, "member_no": member["member_no"], "name": member["name"], "url": url_of(settings, token)}


async def branch_links(union_id: int, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every member of the branch (inactive ones too: they may still see what was spent) by
    member_no, with their link, made where missing: `{member_id, member_no, name, active, url}`."""
    rows = await Member.select(Member.id, Member.member_no, Member.name, Member.active).where(
        Member.union == union_id
    ).order_by(Member.member_no).order_by(Member.id)
    tokens = await links.ensure_links([r["id"] for r in rows], key_of(settings), now)
    return [
        {"member_id": r["id"], "member_no": r["member_no"], "name": r["name"], "active": bool(r["active"]), "url": url_of(settings, tokens[r["id"]])}
        for r in rows
    ]


async def urls_for(member_ids: list[int], settings: Settings, now: datetime) -> dict[int, str]:
    tokens = await links.ensure_links(member_ids, key_of(settings), now)
    return {member_id: url_of(settings, token) for member_id, token in tokens.items()}


def qr_svg(url: str) -> str:
    """The link as a QR code, an `<svg>` element to put in a page (medium error correction:
    it still reads from a creased, signed sheet)."""
    import segno

    return segno.make(url, error="m").svg_inline(border=4, omitsize=True, title="会员额度查询二维码")
