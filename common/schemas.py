"""The constrained types every request shares: bodies refuse unknown fields, ids fit a database
INTEGER, text carries no NUL or other control characters (PostgreSQL refuses NUL).

Bodies use `Id`, `Name` (one line) and `Text` (may hold newlines and tabs), narrowed with a
further `msgspec.Meta(max_length=…)`; handlers take `PathId` (outside 1..2**31-1: 404) and
`QueryId` / `QueryName` (400 `validation_failed`)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import PathParameter, QueryParameter

ID_MAX = 2**31 - 1
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"  # no control character at all
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # newline, carriage return and tab allowed

Id = Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
Name = Annotated[str, msgspec.Meta(pattern=ONE_LINE)]
Text = Annotated[str, msgspec.Meta(pattern=MULTI_LINE)]

PathId = Annotated[int, PathParameter(ge=1, le=ID_MAX)]
QueryId = Annotated[int | None, QueryParameter(ge=1, le=ID_MAX)]


def query_name(max_length: int, description: str | None = None) -> QueryParameter:
    """A one-line text filter in a query string (`q=`, codes)."""
    return QueryParameter(max_length=max_length, pattern=ONE_LINE, description=description)


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every request body: unknown fields are refused."""
