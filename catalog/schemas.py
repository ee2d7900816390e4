"""msgspec structs for the catalog's bodies and answers (regions, suppliers, products, review),
and the checks that hold callers who do not come through HTTP (seeding, pages) to the same limits."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from common.errors import DomainError, invalid
from common.pagination import MAX_LIMIT
from common.schemas import Body, Name, Text

# ---- scalar types, with the limits every entry point shares (API and seeding) ----
RegionCode = Annotated[str, Meta(pattern=r"^[a-z0-9-]{1,32}$", max_length=32)]
UnionCode = Annotated[str, Meta(pattern=r"^[A-Z0-9-]{1,32}$", max_length=32)]
RegionName = Annotated[Name, Meta(min_length=1, max_length=50)]
SupplierName = Annotated[Name, Meta(min_length=1, max_length=100)]
Title = Annotated[Name, Meta(min_length=1, max_length=60)]
CategoryCode = Annotated[Name, Meta(min_length=1, max_length=16)]
Unit = Annotated[Name, Meta(min_length=1, max_length=8)]
Description = Annotated[Text, Meta(max_length=2000)]
PriceFen = Annotated[int, Meta(ge=1, le=100_000_00)]  # 1 fen .. 100 000 yuan
MAX_STOCK = 1_000_000
Stock = Annotated[int, Meta(ge=0, le=MAX_STOCK)]
StockDelta = Annotated[
    int,
    Meta(
        ge=-MAX_STOCK,
        le=MAX_STOCK,
        description=(
            "Add this (negative: take it away) to the stock as it is when the change is applied, so "
            "units reserved by orders meanwhile stay reserved. Not together with `stock`; a change "
            "that would take the stock below 0 or above 1000000 is refused (409 invalid_state) and "
            "changes nothing."
        ),
    ),
]
Reason = Annotated[Text, Meta(min_length=1, max_length=200)]

MAX_PAIRINGS = 50
MAX_SUPPLIER_REGIONS = 50



# ---- regions ----
class RegionIn(Body):
    code: RegionCode
    name: RegionName
    province: RegionName
    paired_with: Annotated[list[UnionCode], Meta(max_length=MAX_PAIRINGS)] = []


class RegionOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    province: str
    paired_with: list[str]


class RegionPage(msgspec.Struct, kw_only=True):
    items: list[RegionOut]
    total: int


# ---- suppliers ----
class SupplierIn(Body):
    name: SupplierName
    regions: Annotated[list[RegionCode], Meta(max_length=MAX_SUPPLIER_REGIONS)]  # at least one through the API


class SupplierOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    regions: list[str]


class SupplierPage(msgspec.Struct, kw_only=True):
    items: list[SupplierOut]
    total: int


# ---- categories ----
class CategoryOut(msgspec.Struct, kw_only=True):
    code: str
    name: str


class CategoryList(msgspec.Struct, kw_only=True):
    items: list[CategoryOut]


# ---- products ----
class ProductIn(Body):
    title: Title
    region: RegionCode
    category: CategoryCode
    unit: Unit
    price_fen: PriceFen
    stock: Stock
    description: Description = ""


class ProductPatch(Body):
    """Any of the product's fields; at least one. `stock` sets the stock, `stock_delta` adjusts it."""

    title: Title | UnsetType = UNSET
    region: RegionCode | UnsetType = UNSET
    category: CategoryCode | UnsetType = UNSET
    unit: Unit | UnsetType = UNSET
    price_fen: PriceFen | UnsetType = UNSET
    stock: Stock | UnsetType = UNSET
    stock_delta: StockDelta | UnsetType = UNSET
    description: Description | UnsetType = UNSET

    def changes(self) -> dict[str, object]:
        return {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not UNSET}


class ReasonIn(Body):
    reason: Reason


class ImageOut(msgspec.Struct, kw_only=True):
    """A product's photo: `url` (at most 1200 px on the long side) and `thumb_url` (400 px), both
    `/images/<sha256>.webp`: public while the product is listed, else to its supplier and admins."""

    id: int
    url: str
    thumb_url: str


class ProductOut(msgspec.Struct, kw_only=True):
    id: int
    title: str
    region: str
    region_name: str
    category: str
    category_name: str
    unit: str
    price_fen: int
    stock: int
    supplier_id: int
    supplier_name: str
    status: str  # a ProductStatus; typed `str` so the OpenAPI schema stays the plain string it was
    description: str
    review_note: str
    created_at: datetime
    updated_at: datetime
    images: list[ImageOut] = []  # oldest first


class ProductPage(msgspec.Struct, kw_only=True):
    items: list[ProductOut]
    total: int


class ReviewOut(msgspec.Struct, kw_only=True):
    """One move of the listing review (a `ProductReview` row), for the shop's admin trail."""

    at: datetime
    actor_id: int | None  # the shop's user id; null when no signed-in user did it
    action: str  # a ReviewAction
    product_id: int
    product_title: str
    reason: str


# ---- the same limits for callers that do not come through HTTP ----
StructT = TypeVar("StructT", bound=msgspec.Struct)


def validated(struct_type: type[StructT], values: dict[str, Any]) -> StructT:
    """`values` as `struct_type`, or a `validation_failed` naming the field at fault."""
    try:
        return msgspec.convert(values, struct_type)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from exc


def _validation_error(exc: msgspec.ValidationError) -> DomainError:
    """msgspec's message (`... - at `$.a[0]``) -> validation_failed naming the field (`a[0]`)."""
    message, _, path = str(exc).partition(" - at `$.")
    field = path.rstrip("`") if path else ""
    if not field and (named := re.search(r"field `([^`]*)`", message)):
        field = named[1]
    return invalid(field or "body", message)


def clean_text(field: str, value: str) -> str:
    """`value` without surrounding blanks; nothing left is a `validation_failed`."""
    value = value.strip()
    if not value:
        raise invalid(field, "must not be blank")
    return value


def check_page(limit: int, offset: int) -> None:
    """`limit` 1..MAX_LIMIT and `offset` not negative, as the API's pagination has them, for callers
    that do not come through it (the pages)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise invalid("offset", "must not be negative")
