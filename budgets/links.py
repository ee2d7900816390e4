"""Members' read-only links (成员额度查询链接): a random, unguessable token per member that
opens the member's own quota page, without a login.

The token is never stored. Each member's row keeps a random `nonce` and `sha256(token)`;
the token is `base64url(HMAC-SHA256(key, nonce || member id))`, `key` derived from the
shop's secret (`derive_key`). So the database alone reveals no link, the branch's buyer can
print or export the same link again later, and a lookup is one indexed equality on the
hash (no secret is compared in Python). A new nonce (`regenerate`) ends the old link.
Links are made when first needed (`ensure_links`: a print, an export) or on `regenerate`.
If the secret changes, the links made under the old one keep working until they are
printed again: `ensure_links` then finds that the stored hash is not its token's and makes
a new link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Iterable

from budgets.tables import Member, MemberLink
from common.errors import DomainError

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes of HMAC, base64url without padding
_BATCH = 500  # members a statement: well under both drivers' parameter limits


def derive_key(secret: str) -> bytes:
    """The links' own key, derived from the shop's secret (never used for anything else)."""
    return hmac.new(secret.encode(), b"shop-member-link", hashlib.sha256).digest()


def token_of(key: bytes, nonce: str, member_id: int) -> str:
    digest = hmac.new(key, bytes.fromhex(nonce) + str(member_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_row(key: bytes, member_id: int, now: datetime) -> tuple[MemberLink, str]:
    nonce = secrets.token_bytes(16).hex()
    token = token_of(key, nonce, member_id)
    return MemberLink(member=member_id, nonce=nonce, token_hash=token_hash(token), created_at=now), token


async def find_member(token: str) -> int | None:
    """The member whose link this is, or None (an unknown, ended or malformed token)."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        return None
    row = await MemberLink.select(MemberLink.member).where(MemberLink.token_hash == token_hash(token)).first()
    return row["member"] if row else None


async def _stored(batch: list[int], key: bytes) -> tuple[dict[int, str], list[int]]:
    """The tokens of the links these members have ({member id: token}), and the members whose
    stored hash is not their token's (a link an earlier secret made)."""
    tokens: dict[int, str] = {}
    stale: list[int] = []
    rows = await MemberLink.select(MemberLink.member, MemberLink.nonce, MemberLink.token_hash).where(MemberLink.member.is_in(batch))
    for row in rows:
        token = token_of(key, row["nonce"], row["member"])
        if hmac.compare_digest(token_hash(token), row["token_hash"]):
            tokens[row["member"]] = token
        else:
            stale.append(row["member"])
    return tokens, stale


async def ensure_links(member_ids: Iterable[int], key: bytes, now: datetime) -> dict[int, str]:
    """{member id: token} for these members, making the links that are missing (or that an
    earlier secret made). Set-based: a select (and, where links are missing, an insert and a
    select) per 500 members; when every link is there, nothing is written."""
    wanted = sorted(set(member_ids))
    tokens: dict[int, str] = {}
    for start in range(0, len(wanted), _BATCH):  # first without a transaction: usually all are there
        batch = wanted[start : start + _BATCH]
        found, stale = await _stored(batch, key)
        tokens.update(found)
        if len(found) < len(batch):
            break
    if len(tokens) == len(wanted):
        return tokens
    tokens = {}
    async with MemberLink._meta.db.transaction():
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            found, stale = await _stored(batch, key)
            tokens.update(found)
            for member_id in stale:
                tokens[member_id] = await _replace(member_id, key, now)
            missing = [m for m in batch if m not in tokens]
            if missing:
                made = [_new_row(key, m, now) for m in missing]
                await MemberLink.insert(*(row for row, _ in made)).on_conflict(target=MemberLink.member, action="DO NOTHING")
                # a link another request made meanwhile wins: read back what is stored
                for row in await MemberLink.select(MemberLink.member, MemberLink.nonce).where(MemberLink.member.is_in(missing)):
                    tokens[row["member"]] = token_of(key, row["nonce"], row["member"])
    return tokens


async def _replace(member_id: int, key: bytes, now: datetime) -> str:
    row, token = _new_row(key, member_id, now)
    await MemberLink.insert(row).on_conflict(
        target=MemberLink.member,
        action="DO UPDATE",
        values=[MemberLink.nonce, MemberLink.token_hash, MemberLink.created_at],
    )
    return token


async def regenerate(member_id: int, *, branch_id: int, key: bytes, now: datetime) -> str:
    """A new link for a member of `branch_id` (the caller's branch); the old one stops
    working at once. Another branch's member is `forbidden`, none `not_found` (as
    `members.update_member` answers)."""
    async with MemberLink._meta.db.transaction():
        member = await Member.select(Member.union).where(Member.id == member_id).first()
        if member is None:
            raise DomainError("not_found", f"member {member_id} does not exist")
        if member["union"] != branch_id:
            raise DomainError("forbidden", f"member {member_id} belongs to another branch")
        return await _replace(member_id, key, now)
