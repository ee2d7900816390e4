"""One pagination dependency for every list: `limit` (1..200, default 50) and `offset`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

MAX_LIMIT = 200
OFFSET_MAX = 2**63 - 1  # what a database BIGINT holds


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


async def provide_page(
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="at most 200")] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=OFFSET_MAX)] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


# a controller that lists declares `dependencies = PAGINATION`; its handlers take `page: Paging`
PAGINATION = {"page": Provide(provide_page)}
Paging = NamedDependency[Page]
