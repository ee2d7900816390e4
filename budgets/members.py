"""A branch's members: adding, renaming and (de)activating them, importing the roster from
a CSV file, and the branch's budget view (each member's spent, held and remaining quota)."""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable, Iterator

from piccolo.columns.combination import WhereRaw

from budgets.checks import check_year, clean_text, text_problem
from budgets.policy import cap_for_year
from budgets.tables import Member, MemberBudget
from budgets.unions import require_branch
from common.errors import DomainError, invalid
from common.sql import is_unique_violation, like_pattern

MEMBER_NAME_MAX = 50
IMPORT_MAX_ROWS = 20_000
_INSERT_BATCH = 500  # rows per INSERT: keeps well under both drivers' parameter limits

MEMBER_NO_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

_MEMBER_COLUMNS = (Member.id, Member.union, Member.member_no, Member.name, Member.active)


def _member_no_problem(member_no: str) -> str | None:
    if not member_no:
        return "member_no is empty"
    if not MEMBER_NO_RE.fullmatch(member_no):
        return f"member_no {member_no!r} must be 1 to 32 letters, digits, '_' or '-'"
    return None


def _member(row: dict) -> dict:
    return {
        "id": row["id"],
        "union_id": row["union"],
        "member_no": row["member_no"],
        "name": row["name"],
        "active": bool(row["active"]),
    }


async def get_member(member_id: int) -> dict | None:
    """`{id, union_id, member_no, name, active}` or None."""
    row = await Member.select(*_MEMBER_COLUMNS).where(Member.id == member_id).first()
    return _member(row) if row else None


async def list_members(
    union_id: int, *, active: bool | None = None, q: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict], int]:
    """A branch's members ordered by member_no; `q` matches part of member_no or name. (page, total)"""
    clauses = [Member.union == union_id]
    if active is not None:
        clauses.append(Member.active == active)
    if q is not None and q.strip():
        pattern = like_pattern(q.strip())
        clauses.append(
            WhereRaw("""(LOWER("member_no") LIKE {} ESCAPE '!' OR LOWER("name") LIKE {} ESCAPE '!')""", pattern, pattern)
        )
    query = Member.select(*_MEMBER_COLUMNS).order_by(Member.member_no, Member.id).limit(limit).offset(offset)
    count = Member.count()
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    return [_member(r) for r in await query], await count


async def create_member(union_id: int, member_no: str, name: str) -> dict:
    """Add an active member to a branch; `member_no` is unique in the branch (`conflict`)."""
    member_no = member_no.strip() if isinstance(member_no, str) else ""
    if problem := _member_no_problem(member_no):
        raise invalid("member_no", problem)
    name = clean_text(name, "name", MEMBER_NAME_MAX)
    async with Member._meta.db.transaction():
        await require_branch(union_id)
        if await Member.exists().where((Member.union == union_id) & (Member.member_no == member_no)):
            raise DomainError("conflict", f"member_no {member_no!r} is already in this branch")
        try:
            inserted = await Member.insert(
                Member(union=union_id, member_no=member_no, name=name, active=True)
            ).returning(Member.id)
        except Exception as exc:
            if is_unique_violation(exc):
                raise DomainError("conflict", f"member_no {member_no!r} is already in this branch") from exc
            raise
    return {"id": inserted[0]["id"], "union_id": union_id, "member_no": member_no, "name": name, "active": True}


async def update_member(member_id: int, *, branch_id: int, name: str | None = None, active: bool | None = None) -> dict:
    """Rename and/or (de)activate a member of `branch_id` (the caller's branch).

    None leaves a field as it is. Another branch's member is `forbidden`; an
    inactive member keeps what was spent but gets no new allocations."""
    if name is None and active is None:
        raise invalid("body", "give name and/or active")
    changes: dict = {}
    if name is not None:
        changes[Member.name] = clean_text(name, "name", MEMBER_NAME_MAX)
    if active is not None:
        changes[Member.active] = bool(active)
    async with Member._meta.db.transaction():
        member = await get_member(member_id)
        if member is None:
            raise DomainError("not_found", f"member {member_id} does not exist")
        if member["union_id"] != branch_id:
            raise DomainError("forbidden", f"member {member_id} belongs to another branch")
        await Member.update(changes).where(Member.id == member_id)
    if name is not None:
        member["name"] = changes[Member.name]
    if active is not None:
        member["active"] = bool(active)
    return member


async def ensure_member(union_id: int, member_no: str, name: str) -> int:
    """The id of the branch's member with `member_no`, created if missing (for `shop seed`;
    an existing one is left as it is)."""
    member_no = member_no.strip()
    if problem := _member_no_problem(member_no):
        raise invalid("member_no", problem)
    name = clean_text(name, "name", MEMBER_NAME_MAX)
    async with Member._meta.db.transaction():
        await require_branch(union_id)
        await Member.insert(Member(union=union_id, member_no=member_no, name=name, active=True)).on_conflict(
            target=(Member.union, Member.member_no), action="DO NOTHING"
        )
        row = await Member.select(Member.id).where((Member.union == union_id) & (Member.member_no == member_no)).first()
    return row["id"]


# --- importing members from CSV (or, from the pages, a file as Excel saves it) ----------

CSV_HEADER = ("member_no", "name")
CN_HEADER = ("会员编号", "姓名")  # the pages' template, as people write it
_HEADER_WORDS = {*CSV_HEADER, *CN_HEADER}
_HEADER_HINT = "a header row must be exactly member_no,name"
_EXCEL_HEADER_HINT = "a header row must be exactly 会员编号,姓名 (or member_no,name)"
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx workbook is a zip file


def _line_error(line: int, message: str) -> dict:
    return {"line": line, "message": message}


def _decode(data: bytes, excel: bool) -> tuple[str | None, list[dict]]:
    """The file's text: UTF-8 with or without a BOM; from the pages (`excel`) also GBK, as
    Excel's "CSV" saves it on a Chinese Windows. Else every line that does not decode."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    if excel:
        try:
            return data.decode("gb18030"), []
        except UnicodeDecodeError:
            pass
    errors = []
    hint = "not UTF-8 or GBK text: save the file as 'CSV UTF-8' or as an Excel workbook (.xlsx)" if excel else "not UTF-8 text: save the file as 'CSV UTF-8'"
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            errors.append(_line_error(number, hint))
    return None, errors


def _csv_rows(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """(line, cells) for each row, numbered by the line it starts on; (line, message) for a row
    that is not CSV, after which nothing more is read."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line_end + 1, f"not valid CSV: {exc}"
            return
        line, line_end = line_end + 1, reader.line_num
        yield line, cells


def _cell_text(value: object) -> str:
    """An .xlsx cell as the text it shows: 1001 and 1001.0 are "1001" (numbers typed as such)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str] | str]]:
    """(row number, cells) of the workbook's first sheet (trailing empty cells dropped)."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # not a workbook openpyxl can read (zip or XML damage, another format)
        yield 1, f"not a readable Excel workbook (.xlsx): {type(exc).__name__}"
        return
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            while cells and not cells[-1].strip():
                cells.pop()
            yield number, cells
    finally:
        workbook.close()


def parse_member_csv(
    data: bytes, max_rows: int = IMPORT_MAX_ROWS, *, excel: bool = False
) -> tuple[list[tuple[int, str, str]], list[dict]]:
    """Read a members file: `([(line, member_no, name)], errors)`, errors as `[{line, message}]`.

    UTF-8 with or without a BOM (Excel's "CSV UTF-8"), LF or CRLF line ends, an
    optional header row which, when present, is exactly `member_no,name`. With `excel`
    (the pages), also what Excel saves: CSV in GBK, an .xlsx workbook (its first sheet),
    and the header `会员编号,姓名`.
    Blank lines (and rows whose every cell is blank, as Excel writes them) are
    skipped wherever they are. Cells are stripped of surrounding spaces. Line
    numbers are the file's own, from 1; a row is numbered by the line it starts
    on. Every bad line is reported."""
    if excel and data.startswith(XLSX_MAGIC):
        source: Iterable[tuple[int, list[str] | str]] = _xlsx_rows(data)
    else:
        if not data.strip(b" \t\r\n\xef\xbb\xbf"):
            return [], [_line_error(1, "the file is empty")]
        text, errors = _decode(data, excel)
        if text is None:
            return [], errors
        source = _csv_rows(text)
    headers = (CSV_HEADER, CN_HEADER) if excel else (CSV_HEADER,)
    hint = _EXCEL_HEADER_HINT if excel else _HEADER_HINT
    rows: list[tuple[int, str, str]] = []
    errors = []
    seen: dict[str, int] = {}
    first_row = True
    data_rows = 0
    for line, cells in source:
        if isinstance(cells, str):  # the file stops being readable here
            errors.append(_line_error(line, cells))
            break
        stripped = [cell.strip() for cell in cells]
        if not any(stripped):
            continue  # a blank line
        is_first_row, first_row = first_row, False
        if is_first_row and any(cell.lower() in _HEADER_WORDS for cell in stripped):
            if tuple(c.lower() for c in stripped) not in headers:
                errors.append(_line_error(line, hint))
            continue
        data_rows += 1
        if data_rows > max_rows:
            errors.append(_line_error(line, f"more than {max_rows} members in one file"))
            break
        if len(cells) != 2:
            errors.append(_line_error(line, f"expected 2 columns (member_no,name), found {len(cells)}"))
            continue
        member_no, name = stripped
        problems = []
        if problem := _member_no_problem(member_no):
            problems.append(problem)
        elif member_no in seen:
            problems.append(f"member_no {member_no!r} already appears on line {seen[member_no]}")
        else:
            seen[member_no] = line
        if problem := text_problem(name, MEMBER_NAME_MAX):
            problems.append(f"name {problem}")
        if problems:
            if is_first_row and _member_no_problem(member_no):  # perhaps a header in other words
                problems.append(hint)
            errors.append(_line_error(line, "; ".join(problems)))
        else:
            rows.append((line, member_no, name))
    if not rows and not errors:
        errors.append(_line_error(1, "the file has no members"))
    return rows, errors


async def import_members(union_id: int, data: bytes, *, excel: bool = False) -> dict:
    """Create or update a branch's members from a CSV file (`excel`: or a file as Excel
    saves it, see `parse_member_csv`), all or nothing.

    A new member_no is created (active); an existing one gets the file's name and
    is made active again (the file is the branch's roster). Members missing from
    the file are left alone. Any bad line: `validation_failed` listing every one
    as `errors: [{line, message}]`, and nothing changes.
    → `{created, updated, unchanged, errors: []}`."""
    await require_branch(union_id)
    rows, errors = parse_member_csv(data, excel=excel)
    if errors:
        raise DomainError(
            "validation_failed",
            f"{len(errors)} line(s) of the file are wrong; nothing was imported",
            errors=errors,
        )
    created = updated = unchanged = 0
    async with Member._meta.db.transaction():
        existing = {
            r["member_no"]: r
            for r in await Member.select(Member.id, Member.member_no, Member.name, Member.active).where(Member.union == union_id)
        }
        new: list[Member] = []
        for _, member_no, name in rows:
            row = existing.get(member_no)
            if row is None:
                new.append(Member(union=union_id, member_no=member_no, name=name, active=True))
            elif row["name"] == name and row["active"]:
                unchanged += 1
            else:
                await Member.update({Member.name: name, Member.active: True}).where(Member.id == row["id"])
                updated += 1
        try:
            for start in range(0, len(new), _INSERT_BATCH):
                await Member.insert(*new[start : start + _INSERT_BATCH])
        except Exception as exc:
            if is_unique_violation(exc):
                raise DomainError("conflict", "the branch's members changed during the import; nothing was imported, try again") from exc
            raise
        created = len(new)
    return {"created": created, "updated": updated, "unchanged": unchanged, "errors": []}


# --- a branch's budget ------------------------------------------------------


async def branch_budget(union_id: int, year: int) -> dict:
    """`{union_id, year, cap_fen, members: [{member_id, member_no, name, active, spent_fen,
    held_fen, remaining_fen}]}` by member_no: every active member, and inactive ones
    with something spent or held that year. A member without a budget row has
    spent and held nothing; `remaining_fen = max(cap - spent - held, 0)`."""
    check_year(year)
    await require_branch(union_id)
    cap = await cap_for_year(year)
    members = await Member.select(*_MEMBER_COLUMNS).where(Member.union == union_id).order_by(Member.member_no, Member.id)
    budgets = {
        r["member"]: r
        for r in await MemberBudget.select(MemberBudget.member, MemberBudget.held_fen, MemberBudget.spent_fen).where(
            (MemberBudget.member.union == union_id) & (MemberBudget.year == year)
        )
    }
    items = []
    for m in members:
        item = _budget_item(m, budgets.get(m["id"]), cap)
        if not m["active"] and not item["spent_fen"] and not item["held_fen"]:
            continue
        items.append(item)
    return {"union_id": union_id, "year": year, "cap_fen": cap, "members": items}


def _budget_item(member: dict, budget: dict | None, cap: int) -> dict:
    """One member's line of a branch's budget (no budget row: nothing spent or held)."""
    spent = budget["spent_fen"] if budget else 0
    held = budget["held_fen"] if budget else 0
    return {
        "member_id": member["id"],
        "member_no": member["member_no"],
        "name": member["name"],
        "active": bool(member["active"]),
        "spent_fen": spent,
        "held_fen": held,
        "remaining_fen": max(cap - spent - held, 0),
    }


async def member_budget(member_id: int, year: int) -> dict | None:
    """One member's line of `branch_budget` with the year's cap: `{member_id, union_id,
    member_no, name, active, cap_fen, spent_fen, held_fen, remaining_fen}`, or None when
    there is no such member (what the member's own page shows)."""
    check_year(year)
    member = await Member.select(*_MEMBER_COLUMNS).where(Member.id == member_id).first()
    if member is None:
        return None
    budget = await MemberBudget.select(MemberBudget.held_fen, MemberBudget.spent_fen).where(
        (MemberBudget.member == member_id) & (MemberBudget.year == year)
    ).first()
    cap = await cap_for_year(year)
    return {**_budget_item(member, budget, cap), "union_id": member["union"], "cap_fen": cap}


async def members_by_id(ids: Iterable[int]) -> dict[int, dict]:
    """{member id: {id, union_id, member_no, name, active}} for these members."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {r["id"]: _member(r) for r in await Member.select(*_MEMBER_COLUMNS).where(Member.id.is_in(wanted))}
