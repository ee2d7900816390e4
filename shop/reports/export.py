"""Reports and audit lists as CSV (UTF-8 with BOM, so Excel reads Chinese) or XLSX.

Text is never a formula: a cell whose text starts with `=`, `+`, `-`, `@`, a tab or a
carriage return (a member named `=HYPERLINK(…)`) is written with a leading `'`, and in
XLSX as a text cell, in every export (API.md, "Robustness of every endpoint").

Every export is streamed, never held whole: the rows come as batches (an async iterator
over the database, `common.sql.BATCH` rows a query, in one read snapshot). CSV is sent as
each batch is read; XLSX is written by openpyxl's write-only workbook to a temporary file,
which is then sent in chunks (and is gone when sent or abandoned)."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from contextlib import aclosing, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any, AsyncIterable, AsyncIterator, Callable, Literal, Mapping
from urllib.parse import quote

from anyio import to_thread
from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from common.clock import SHANGHAI
from common.money import yuan_text

Format = Literal["json", "csv", "xlsx"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 256 * 1024  # bytes of the XLSX file a body message carries
Batches = AsyncIterable[list[dict[str, Any]]]


@dataclass(frozen=True)
class Column:
    """One column of an export. `time`: a moment (ISO 8601 text or an aware datetime), written
    as Asia/Shanghai local time, a real date-time cell in XLSX; `labels`: codes said in words
    (`hold` -> 占用)."""

    key: str
    header: str
    kind: Literal["text", "int", "fen", "ratio", "flag", "time"] = "text"
    labels: Mapping[str, str] | None = None


def _local(value: Any) -> datetime:
    """A moment as Shanghai wall-clock time without a zone (what a spreadsheet cell holds)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(SHANGHAI).replace(tzinfo=None)


yuan = yuan_text  # exact yuan text for a fen amount: 123456 -> "1234.56"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutral(text: str) -> str:
    """Text that a spreadsheet will show as text, never run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "time":
        return _local(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "fen":
        return yuan(int(value))
    if kind == "ratio":
        return f"{Decimal(str(value)) * 100:.2f}%"
    if kind == "flag":
        return "是" if value else "否"
    return neutral(str(value))


def _said(row: dict[str, Any], column: Column) -> Any:
    """The row's value for the column, a code said in words where the column has labels."""
    value = row.get(column.key)
    if column.labels is not None and value is not None:
        return column.labels.get(str(value), value)
    return value


def _headers(filename: str, media_type: str) -> dict[str, str]:
    """A download's headers (the content-type here: a handler's own media type would win over a Stream's)."""
    ascii_name = filename.encode("ascii", "ignore").decode() or "report"
    return {
        "content-type": media_type,
        "content-disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
    }


def _ahead(batches: Batches) -> tuple[AsyncIterator[list[dict[str, Any]]], BackgroundTask]:
    """The batches read by a task of their own, at most two ahead of the response: that task
    opens and closes the read snapshot, whether the download ends or the client goes away
    (the response's background task then stops it)."""
    queue: asyncio.Queue[list[dict[str, Any]] | Exception | None] = asyncio.Queue(maxsize=2)
    tasks: list[asyncio.Task] = []

    async def read() -> None:
        try:
            async with aclosing(aiter(batches)) as source:
                async for batch in source:
                    await queue.put(batch)
        except Exception as exc:  # the response ends with it, unfinished
            await queue.put(exc)
            return
        await queue.put(None)

    async def each() -> AsyncIterator[list[dict[str, Any]]]:
        tasks.append(asyncio.create_task(read()))
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return each(), BackgroundTask(stop)


def to_csv(batches: Batches, columns: list[Column], filename: str, shape: Callable[[dict], dict]) -> Stream:
    each, stop = _ahead(batches)

    async def chunks() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([c.header for c in columns])
        yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
        async for batch in each:
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_text(_said(row, c), c.kind) for c in columns] for row in map(shape, batch))
            yield buffer.getvalue().encode("utf-8")

    return Stream(chunks(), headers=_headers(f"{filename}.csv", "text/csv; charset=utf-8"), background=stop)


def _xlsx_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "time":
        return _local(value)
    if kind == "fen":
        return Decimal(int(value)) / 100
    if kind == "ratio":
        return Decimal(str(value))
    if kind == "flag":
        return _text(value, "flag")
    return neutral(value) if isinstance(value, str) else value


async def _spool_xlsx(batches: Batches, columns: list[Column], title: str, shape: Callable[[dict], dict]) -> IO[bytes]:
    """The workbook, written row by row (write-only: openpyxl keeps the rows in its own
    temporary file), saved to an anonymous temporary file, rewound."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    for index, c in enumerate(columns, start=1):
        width = 20 if c.kind == "time" else max(10, min(40, len(c.header) * 2 + 4))
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    header = []
    for c in columns:
        cell = WriteOnlyCell(sheet, c.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    formats = [{"fen": '"¥"#,##0.00', "ratio": "0.00%", "time": "yyyy-mm-dd hh:mm:ss"}.get(c.kind) for c in columns]

    def cell(value: Any, fmt: str | None) -> Any:
        if fmt is None or value is None:
            return value
        out = WriteOnlyCell(sheet, value)
        out.number_format = fmt
        return out

    def append(batch: list[dict[str, Any]]) -> None:
        for row in map(shape, batch):
            sheet.append([cell(_xlsx_value(_said(row, c), c.kind), f) for c, f in zip(columns, formats)])

    async with aclosing(aiter(batches)) as source:
        async for batch in source:
            await to_thread.run_sync(append, batch)
    out = tempfile.TemporaryFile()
    try:
        await to_thread.run_sync(workbook.save, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


async def to_xlsx(batches: Batches, columns: list[Column], filename: str, title: str, shape: Callable[[dict], dict]) -> Stream:
    spooled = await _spool_xlsx(batches, columns, title, shape)

    async def chunks() -> AsyncIterator[bytes]:
        while data := await to_thread.run_sync(spooled.read, CHUNK):
            yield data

    return Stream(chunks(), headers=_headers(f"{filename}.xlsx", XLSX_TYPE), background=BackgroundTask(to_thread.run_sync, spooled.close))


def _as_is(row: dict[str, Any]) -> dict[str, Any]:
    return row


async def _once(rows: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    yield rows


async def export(
    fmt: Format, batches: Batches, columns: list[Column], filename: str, title: str = "报表", shape: Callable[[dict], dict] = _as_is
) -> Stream:
    """A whole list as CSV or XLSX, streamed; `shape` makes each row of a batch an export row."""
    if fmt == "csv":
        return to_csv(batches, columns, filename, shape)
    return await to_xlsx(batches, columns, filename, title, shape)


async def respond(fmt: Format, rows: list[dict[str, Any]], columns: list[Column], filename: str, json_body: Any, title: str = "报表") -> Any:
    """A report already in hand as JSON (the default), CSV or XLSX."""
    if fmt == "json":
        return json_body
    return await export(fmt, _once(rows), columns, filename, title)
