"""The supplier adds and removes its products' photos (at most `MAX_IMAGES` a product).

An upload is read into a temporary file with its byte cap enforced as it is read
(`FileStore.receive`), recognised by its content, checked and re-encoded (`catalog.imaging`, in
a worker thread, at most `DECODERS` at once per process), then stored with the product's photo
row in one transaction (`FileStore.transaction`): a refusal or failure leaves no file and no row.
Adding or removing a photo of a listed product sends it back to review
(`service.changed_by_supplier`). Plain async functions: the API and the pages call them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from catalog import imaging, service
from catalog.images import MAX_IMAGES, image_count, images_of
from catalog.schemas import ImageOut
from catalog.tables import ProductImage
from common.clock import utcnow
from common.errors import DomainError, invalid
from common.files import IMAGES, FileStore, Readable
from common.schemas import ID_MAX

DECODERS = asyncio.Semaphore(2)  # decoding a 40-megapixel image takes memory and a core


def _too_many(product_id: int) -> DomainError:
    return DomainError("invalid_state", f"product {product_id} already has {MAX_IMAGES} photos; remove one first", max_images=MAX_IMAGES)


async def add_photo(
    store: FileStore,
    supplier_id: int,
    product_id: int,
    upload: Readable | AsyncIterable[bytes],
    *,
    actor_id: int | None,
    review: bool = True,
) -> ImageOut:
    """A new photo of the supplier's product from `upload` (JPEG, PNG or WebP by content, at most
    5 MB and 40 megapixels; else `validation_failed` on `file`). The seventh: `invalid_state`.
    `review=False`: the product stays in its state (the demo seeds, which list what they seed)."""
    await service.get_product(product_id, supplier_id=supplier_id)  # not found, or another supplier's: before reading
    if await image_count(product_id) >= MAX_IMAGES:
        raise _too_many(product_id)
    async with store.receive(upload, max_bytes=imaging.MAX_BYTES) as received:
        if received.content_type not in IMAGES:
            raise invalid("file", "a photo must be a JPEG, PNG or WebP image (recognised by its content)")
        async with DECODERS:
            encoded = await asyncio.to_thread(imaging.reencode, received.path, received.content_type)
    async with store.transaction() as files:
        row = await service.lock_editable(supplier_id, product_id)
        if await image_count(product_id) >= MAX_IMAGES:  # again, under the product's lock
            raise _too_many(product_id)
        picture = await files.put_bytes(encoded.picture, imaging.OUTPUT_TYPE)
        thumbnail = await files.put_bytes(encoded.thumbnail, imaging.OUTPUT_TYPE)
        inserted = await ProductImage.insert(
            ProductImage(
                product=product_id,
                picture=picture.id,
                thumbnail=thumbnail.id,
                width=encoded.width,
                height=encoded.height,
                created_at=utcnow(),
            )
        ).returning(ProductImage.id)
        image_id = inserted[0]["id"]
        if review:
            await service.changed_by_supplier(row, actor_id=actor_id, what=f"photo #{image_id} added")
    return next(i for i in (await images_of([product_id]))[product_id] if i.id == image_id)


async def delete_photo(supplier_id: int, product_id: int, image_id: int, *, actor_id: int | None) -> None:
    """Remove a photo of the supplier's product. Its stored files stay: the same content may be
    another photo's, and a content-addressed URL is not reused for anything else."""
    async with ProductImage._meta.db.transaction():
        row = await service.lock_editable(supplier_id, product_id)
        deleted = []
        if 1 <= image_id <= ID_MAX:
            deleted = await ProductImage.delete().where((ProductImage.id == image_id) & (ProductImage.product == product_id)).returning(ProductImage.id)
        if not deleted:
            raise DomainError("not_found", f"product {product_id} has no photo {image_id}")
        await service.changed_by_supplier(row, actor_id=actor_id, what=f"photo #{image_id} removed")
