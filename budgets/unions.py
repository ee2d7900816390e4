"""The union tree: federation > district > branch (基层工会, the buyer).

Each union keeps its materialised path (`/1/7/42/`), so a subtree is one indexed prefix
match: `Union.path.like(subtree_prefix(id) + "%")`, or through a foreign key
`Member.union.path.like(...)`."""

from __future__ import annotations

import re
from typing import Iterable

from budgets.checks import clean_text
from budgets.states import Level
from budgets.tables import Union
from common.errors import DomainError, invalid
from common.sql import is_unique_violation

UNION_NAME_MAX = 100
_PATH_MAX = 255  # Union.path's length

UNION_CODE_RE = re.compile(r"[A-Z0-9-]{1,32}")

# level -> the levels its parent may have (None: no parent)
PARENT_LEVELS: dict[str, tuple[str | None, ...]] = {
    Level.federation: (None, Level.federation),
    Level.district: (Level.federation,),
    Level.branch: (Level.district, Level.federation),
}

_UNION_COLUMNS = (Union.id, Union.code, Union.name, Union.level, Union.parent, Union.path)


def _union(row: dict) -> dict:
    return {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "level": row["level"],
        "parent_id": row["parent"],
        "path": row["path"],
    }


async def get_union(union_id: int) -> dict | None:
    """`{id, code, name, level, parent_id, path}` or None."""
    row = await Union.select(*_UNION_COLUMNS).where(Union.id == union_id).first()
    return _union(row) if row else None


async def union_by_code(code: str) -> dict | None:
    """`{id, code, name, level, parent_id, path}` or None."""
    row = await Union.select(*_UNION_COLUMNS).where(Union.code == code).first()
    return _union(row) if row else None


async def union_detail(union_id: int) -> dict:
    """The union with its children's ids; `not_found` if there is none."""
    union = await get_union(union_id)
    if union is None:
        raise DomainError("not_found", f"union {union_id} does not exist")
    children = await Union.select(Union.id).where(Union.parent == union_id).order_by(Union.id)
    return {**union, "children": [r["id"] for r in children]}


async def require_branch(union_id: int) -> dict:
    """The union, which must exist (`not_found`) and be a branch (`invalid_state`): only branches have members."""
    union = await get_union(union_id)
    if union is None:
        raise DomainError("not_found", f"union {union_id} does not exist")
    if union["level"] != Level.branch:
        raise DomainError("invalid_state", f"union {union['code']} is a {union['level']}; only a branch (基层工会) has members")
    return union


async def list_unions(
    *, parent_id: int | None = None, level: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict], int]:
    """Unions by id, optionally the children of one union and/or of one level; (page, total)."""
    clauses = []
    if parent_id is not None:
        clauses.append(Union.parent == parent_id)
    if level is not None:
        clauses.append(Union.level == level)
    query = Union.select(*_UNION_COLUMNS).order_by(Union.id).limit(limit).offset(offset)
    count = Union.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    return [_union(r) for r in await query], await count


async def create_union(code: str, name: str, level: str, parent_code: str | None = None) -> dict:
    """Add a union under `parent_code` and set its materialised path, in one transaction.

    A federation has no parent or a federation parent; a district's parent is a
    federation; a branch's parent is a district or a federation; a branch has no
    children. An unknown `parent_code` is `not_found`; a taken `code` is `conflict`."""
    if not isinstance(code, str) or not UNION_CODE_RE.fullmatch(code):
        raise invalid("code", "must be 1 to 32 capital letters, digits or '-'")
    name = clean_text(name, "name", UNION_NAME_MAX)
    if level not in tuple(Level):
        raise invalid("level", f"must be one of {', '.join(Level)}")
    async with Union._meta.db.transaction():
        parent = None
        if parent_code is not None:
            parent = await union_by_code(parent_code)
            if parent is None:
                raise DomainError("not_found", f"parent union {parent_code!r} does not exist")
        parent_level = parent["level"] if parent else None
        if parent_level not in PARENT_LEVELS[level]:
            if parent_level == Level.branch:
                message = "a branch (基层工会) has no child unions"
            elif parent is None:
                message = f"a {level} needs a parent ({' or '.join(str(p) for p in PARENT_LEVELS[level])})"
            else:
                allowed = " or ".join(p or "none" for p in PARENT_LEVELS[level])
                message = f"a {level}'s parent must be a {allowed}, not a {parent_level}"
            raise invalid("parent_code", message)
        if await Union.exists().where(Union.code == code):
            raise DomainError("conflict", f"union code {code!r} is taken")
        try:
            inserted = await Union.insert(
                Union(code=code, name=name, level=level, parent=parent["id"] if parent else None, path="")
            ).returning(Union.id)
        except Exception as exc:
            if is_unique_violation(exc):
                raise DomainError("conflict", f"union code {code!r} is taken") from exc
            raise
        union_id = inserted[0]["id"]
        path = f"{parent['path'] if parent else '/'}{union_id}/"
        if len(path) > _PATH_MAX:
            raise invalid("parent_code", "the union tree is too deep there")
        await Union.update({Union.path: path}).where(Union.id == union_id)
    return {"id": union_id, "code": code, "name": name, "level": level, "parent_id": parent["id"] if parent else None, "path": path}


async def ensure_union(code: str, name: str, level: str, parent_code: str | None = None) -> int:
    """The id of the union with `code`, created if missing (for `shop seed`; an existing one is left as it is)."""
    existing = await union_by_code(code)
    if existing is not None:
        return existing["id"]
    try:
        return (await create_union(code, name, level, parent_code))["id"]
    except DomainError as exc:
        if exc.code != "conflict":  # created at the same moment elsewhere
            raise
    existing = await union_by_code(code)
    assert existing is not None
    return existing["id"]


async def subtree_prefix(union_id: int) -> str:
    """The union's materialised path: `Union.path.like(prefix + "%")` (or, through a
    foreign key, `Member.union.path.like(...)`) selects it and everything below it."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    if row is None:
        raise DomainError("not_found", f"union {union_id} does not exist")
    return row["path"]


async def branches_under(prefix: str | None) -> list[dict]:
    """The branches (基层工会) whose path starts with `prefix` (None: every branch), by code."""
    query = Union.select(*_UNION_COLUMNS).where(Union.level == Level.branch)
    if prefix is not None:
        query = query.where(Union.path.like(prefix + "%"))
    return [_union(r) for r in await query.order_by(Union.code)]


async def is_in_subtree(union_id: int, ancestor_id: int) -> bool:
    """Whether `ancestor_id` is `union_id` itself or one of its ancestors (False if either is unknown)."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    return row is not None and f"/{int(ancestor_id)}/" in row["path"]


async def names_by_id(ids: Iterable[int]) -> dict[int, str]:
    """{union id: name} for these unions (unknown ids are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {u["id"]: u["name"] for u in await Union.select(Union.id, Union.name).where(Union.id.is_in(wanted))}


async def codes_by_id(ids: Iterable[int]) -> dict[int, str]:
    """{union id: code} for these unions (unknown ids are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {u["id"]: u["code"] for u in await Union.select(Union.id, Union.code).where(Union.id.is_in(wanted))}


async def names_by_code(codes: Iterable[str]) -> dict[str, str]:
    """{union code: name} for these codes (unknown codes are left out)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {u["code"]: u["name"] for u in await Union.select(Union.code, Union.name).where(Union.code.is_in(wanted))}


async def lineage_codes(union_id: int) -> list[str]:
    """The codes of the union and of every union above it (for a branch: the unions
    whose paired regions it may buy from)."""
    row = await Union.select(Union.path).where(Union.id == union_id).first()
    ids = [int(p) for p in (row["path"] if row else "").strip("/").split("/") if p]
    if not ids:
        return []
    return [u["code"] for u in await Union.select(Union.code).where(Union.id.is_in(ids))]
