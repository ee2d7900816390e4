"""What a product shows, and who may see a photo.

Photos are stored files (`common.files`), served at `/images/<sha256>.webp` (`catalog.api`): a
URL never changes what it answers. A photo file is public while some listed product shows it;
otherwise only the supplier whose product shows it, and admins, may see it. Adding and removing
photos is `catalog.photos`; making them, `catalog.imaging`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog.schemas import ImageOut
from catalog.tables import ProductImage, ProductStatus
from common.files import StoredRef, file_name, stored_file

IMAGE_PATH = "/images"
MAX_IMAGES = 6  # photos a product may have


def image_url(sha256: str, content_type: str) -> str:
    return f"{IMAGE_PATH}/{file_name(sha256, content_type)}"


def _image_out(row: dict[str, Any]) -> ImageOut:
    return ImageOut(
        id=row["id"], url=image_url(row["picture_sha"], row["picture_type"]), thumb_url=image_url(row["thumb_sha"], row["thumb_type"])
    )


_COLUMNS = (
    ProductImage.id,
    ProductImage.product,
    ProductImage.picture.sha256.as_alias("picture_sha"),
    ProductImage.picture.content_type.as_alias("picture_type"),
    ProductImage.thumbnail.sha256.as_alias("thumb_sha"),
    ProductImage.thumbnail.content_type.as_alias("thumb_type"),
)


# A page of products (a subquery `page` with column `id`) with their photos, as one statement:
# one row per photo (oldest first), or one with `image_id` NULL for a product without any.
PAGE_WITH_IMAGES_SQL = (
    "SELECT page.*, i.id AS image_id, f1.sha256 AS picture_sha, f1.content_type AS picture_type, "
    "f2.sha256 AS thumb_sha, f2.content_type AS thumb_type FROM ({page}) page "
    "LEFT JOIN catalog_product_image i ON i.product = page.id LEFT JOIN common_stored_file f1 ON f1.id = i.picture "
    "LEFT JOIN common_stored_file f2 ON f2.id = i.thumbnail ORDER BY page.id, i.id"
)


def grouped_images(rows: Sequence[Any]) -> list[tuple[Any, list[ImageOut]]]:
    """`PAGE_WITH_IMAGES_SQL`'s rows as (the product's first row, its photos), by product id."""
    out: list[tuple[Any, list[ImageOut]]] = []
    for row in rows:
        if not out or out[-1][0]["id"] != row["id"]:
            out.append((row, []))
        if row["image_id"] is not None:
            out[-1][1].append(ImageOut(
                id=row["image_id"], url=image_url(row["picture_sha"], row["picture_type"]),
                thumb_url=image_url(row["thumb_sha"], row["thumb_type"]),
            ))  # fmt: skip
    return out


async def images_of(product_ids: Sequence[int]) -> dict[int, list[ImageOut]]:
    """Each product's photos, oldest first (one query for a whole page of products)."""
    if not product_ids:
        return {}
    ids = sorted(set(product_ids))
    rows = await ProductImage.raw(
        "SELECT i.id, i.product, f1.sha256 AS picture_sha, f1.content_type AS picture_type, f2.sha256 AS thumb_sha, "
        "f2.content_type AS thumb_type FROM catalog_product_image i LEFT JOIN common_stored_file f1 ON f1.id = i.picture "
        f"LEFT JOIN common_stored_file f2 ON f2.id = i.thumbnail WHERE i.product IN ({', '.join('{}' for _ in ids)}) ORDER BY i.id",
        *ids,
    )
    found: dict[int, list[ImageOut]] = {}
    for row in rows:
        found.setdefault(row["product"], []).append(_image_out(row))
    return found


async def image_count(product_id: int) -> int:
    return await ProductImage.count().where(ProductImage.product == product_id)


@dataclass(frozen=True, slots=True)
class PhotoFile:
    """A stored photo file and who may see it."""

    ref: StoredRef
    public: bool  # some listed product shows it
    supplier_ids: frozenset[int]  # the suppliers whose products show it


async def photo_file(name: str) -> PhotoFile | None:
    """The photo file named `<sha256>.<ext>` in its URL, if some product shows it."""
    sha256, dot, _ = name.partition(".")
    ref = await stored_file(sha256) if dot else None
    if ref is None or ref.name != name:
        return None
    rows = await ProductImage.select(
        ProductImage.product.status.as_alias("status"), ProductImage.product.supplier.as_alias("supplier_id")
    ).where((ProductImage.picture == ref.id) | (ProductImage.thumbnail == ref.id))
    if not rows:
        return None
    return PhotoFile(
        ref=ref,
        public=any(r["status"] == ProductStatus.listed for r in rows),
        supplier_ids=frozenset(r["supplier_id"] for r in rows),
    )


def may_see(photo: PhotoFile, viewer: Any) -> bool:
    """May `viewer` (the signed-in user, or None: anyone) see this photo? Anyone if it is public;
    else admins and the supplier whose product shows it."""
    if photo.public:
        return True
    role = getattr(viewer, "role", None)
    return role == "admin" or (role == "supplier" and getattr(viewer, "supplier_id", None) in photo.supplier_ids)
