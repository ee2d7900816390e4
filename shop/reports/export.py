"""Reports and audit lists as CSV (UTF-8 with BOM, so Excel reads Chinese) or XLSX.

Text is never a formula: a cell whose text starts with `=`, `+`, `-`, `@`, a tab or a
carriage return (a member named `=HYPERLINK(…)`) is written with a leading `'`, and in
XLSX as a text cell, in every export (API.md, "Robustness of every endpoint")."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Literal
from urllib.parse import quote

from litestar import Response

Format = Literal["json", "csv", "xlsx"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Literal["text", "int", "fen", "ratio", "flag"] = "text"


def yuan(fen: int) -> str:
    """Exact yuan text for a fen amount: 123456 -> "1234.56" (no floats)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutral(text: str) -> str:
    """Text that a spreadsheet will show as text, never run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "fen":
        return yuan(int(value))
    if kind == "ratio":
        return f"{Decimal(str(value)) * 100:.2f}%"
    if kind == "flag":
        return "是" if value else "否"
    return neutral(str(value))


def _disposition(filename: str) -> dict[str, str]:
    ascii_name = filename.encode("ascii", "ignore").decode() or "report"
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"}


def to_csv(rows: Iterable[dict[str, Any]], columns: list[Column], filename: str) -> Response[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.header for c in columns])
    for row in rows:
        writer.writerow([_text(row.get(c.key), c.kind) for c in columns])
    body = "\ufeff" + buffer.getvalue()
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=_disposition(f"{filename}.csv"))


def to_xlsx(rows: Iterable[dict[str, Any]], columns: list[Column], filename: str, title: str = "报表") -> Response[bytes]:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append([c.header for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for row in rows:
        values: list[Any] = []
        for c in columns:
            value = row.get(c.key)
            if value is not None and c.kind == "fen":
                value = Decimal(int(value)) / 100
            elif value is not None and c.kind == "ratio":
                value = Decimal(str(value))
            elif value is not None and c.kind == "flag":
                value = _text(value, "flag")
            elif isinstance(value, str):
                value = neutral(value)
            values.append(value)
        sheet.append(values)
    for index, c in enumerate(columns, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(10, min(40, len(c.header) * 2 + 4))
        fmt = {"fen": '"¥"#,##0.00', "ratio": "0.00%"}.get(c.kind)
        if fmt:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = fmt
    out = io.BytesIO()
    workbook.save(out)
    return Response(out.getvalue(), media_type=XLSX_TYPE, headers=_disposition(f"{filename}.xlsx"))


def respond(fmt: Format, rows: list[dict[str, Any]], columns: list[Column], filename: str, json_body: Any, title: str = "报表") -> Any:
    """The same report as JSON (the default), CSV or XLSX."""
    if fmt == "csv":
        return to_csv(rows, columns, filename)
    if fmt == "xlsx":
        return to_xlsx(rows, columns, filename, title)
    return json_body
