"""Catalog tables: paired regions, suppliers, certified regions, products, the
product's states (one `StrEnum`, also the CHECK constraint's list), its photos and the review's record."""

from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from common.sql import one_of
from common.tables import StoredFile


class ProductStatus(StrEnum):
    """Where a product is in the listing review (`catalog.service.TRANSITIONS` moves it)."""

    draft = "draft"
    pending_review = "pending_review"
    listed = "listed"
    rejected = "rejected"
    delisted = "delisted"


class Region(Table, tablename="catalog_region"):
    """A paired region (对口帮扶协作地区) that listed products come from."""

    code = Varchar(length=32, unique=True)
    name = Varchar(length=50)
    province = Varchar(length=50)


class RegionPairing(Table, tablename="catalog_region_pairing"):
    """Which union (by code, usually a city federation) a region is paired with."""

    region = ForeignKey(Region, null=False, on_delete=OnDelete.restrict)
    union_code = Varchar(length=32, index=True)

    pairing_unique = Unique([region, union_code])


class Supplier(Table, tablename="catalog_supplier"):
    name = Varchar(length=100, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class SupplierRegion(Table, tablename="catalog_supplier_region"):
    """A region a supplier is certified to sell from."""

    supplier = ForeignKey(Supplier, null=False, on_delete=OnDelete.restrict)
    region = ForeignKey(Region, null=False, on_delete=OnDelete.restrict)

    supplier_region_unique = Unique([supplier, region])


class Product(Table, tablename="catalog_product"):
    supplier = ForeignKey(Supplier, null=False, index=True, on_delete=OnDelete.restrict)
    region = ForeignKey(Region, null=False, index=True, on_delete=OnDelete.restrict)
    title = Varchar(length=60)
    category = Varchar(length=16, index=True)
    unit = Varchar(length=8)
    price_fen = Integer()
    stock = Integer(default=0)
    description = Text(default="")
    status = Varchar(length=16, default=ProductStatus.draft, index=True)
    review_note = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    product_price_positive = Check(price_fen > 0)
    product_stock_non_negative = Check(stock >= 0)
    product_status_known = Check(one_of("status", ProductStatus))


class ReviewAction(StrEnum):
    """What a `ProductReview` records: the supplier's submit and the admin's decisions."""

    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    delisted = "delisted"
    resubmitted = "resubmitted"  # a change by the supplier (its photos) sent a listed product back to review


class ProductReview(Table, tablename="catalog_product_review"):
    """Who moved a product along the review, and why: written in the transaction that moves it
    (`catalog.service`), never updated or deleted. `actor_id` is the shop's user id, a plain
    integer because the catalog knows no users; null when no signed-in user did it."""

    product = ForeignKey(Product, null=False, index=True, on_delete=OnDelete.restrict)
    action = Varchar(length=16)
    actor_id = Integer(null=True, default=None)
    reason = Text(default="")
    at = Timestamptz(default=TimestamptzNow(), index=True)

    product_review_action_known_v2 = Check(one_of("action", ReviewAction))


class ProductImage(Table, tablename="catalog_product_image"):
    """A photo of a product (`catalog.images`): the re-encoded picture and its thumbnail, both
    stored files. Shown in ascending id; deleting a photo deletes this row (the stored files stay:
    the same content may be another product's photo)."""

    product = ForeignKey(Product, null=False, index=True, on_delete=OnDelete.restrict)
    picture = ForeignKey(StoredFile, null=False, index=True, on_delete=OnDelete.restrict)
    thumbnail = ForeignKey(StoredFile, null=False, index=True, on_delete=OnDelete.restrict)
    width = Integer()
    height = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
