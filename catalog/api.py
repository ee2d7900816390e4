"""Catalog endpoints: regions, categories, suppliers, products and their review.

Thin controllers: parse, call one function of `catalog.regions`, `catalog.suppliers`,
`catalog.service` (products and review) or `catalog.photos`, shape the answer. Lists take
`common.pagination`'s `page` (query `limit`, `offset`). Which role reaches which controller is
decided by the group it is exported in (`ROUTES`). The application provides two dependencies the
catalog cannot make itself: `file_store` (the `common.files.FileStore` under DATA_DIR) and
`viewer` (`await viewer()`: who is asking on a public route, the signed-in user or None)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, PathParameter, QueryParameter

from catalog import images, imaging, photos, regions, service, suppliers
from catalog.schemas import (
    CategoryList,
    ImageOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ReasonIn,
    RegionIn,
    RegionOut,
    RegionPage,
    SupplierIn,
    SupplierOut,
    SupplierPage,
    UnionCode,
)
from catalog.tables import ProductStatus
from common.errors import DomainError
from common.files import IMMUTABLE, PRIVATE, FileStore, body_limit, file_response, multipart_form, upload_in
from common.pagination import PAGINATION, Paging
from common.schemas import ONE_LINE, PathId, QueryId, query_name

RegionFilter = Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9-]{1,32}$", max_length=32, description="region code")]
CategoryFilter = Annotated[str | None, query_name(16, "category code")]
StatusFilter = Annotated[str | None, query_name(16, "product state")]
SupplierFilter = QueryId
TextFilter = Annotated[str | None, query_name(100, "in title or description")]


async def product_filters(
    region: RegionFilter = None,
    category: CategoryFilter = None,
    supplier_id: SupplierFilter = None,
    paired_with: FromQuery[list[UnionCode] | None] = None,
    q: TextFilter = None,
    *,
    page: Paging,
) -> dict[str, Any]:
    """The query every product list takes (as keyword arguments of `service.list_products`)."""
    return {
        "region": region,
        "category": category,
        "supplier_id": supplier_id,
        "paired_with": paired_with,
        "q": q,
        "limit": page.limit,
        "offset": page.offset,
    }


PRODUCT_FILTERS = {"filters": Provide(product_filters)}
Filters = NamedDependency[dict[str, Any]]
Files = NamedDependency[FileStore]  # the app's `file_store`
Viewer = NamedDependency[Callable[[], Awaitable[Any]]]  # the app's `viewer`: `await viewer()` is who is asking on a public route, or None
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=2000)]
PHOTO_BODY_MAX = body_limit(imaging.MAX_BYTES)


def _supplier_id(request: Request[Any, Any, Any]) -> int:
    supplier_id = getattr(request.user, "supplier_id", None)
    if supplier_id is None:
        raise DomainError("forbidden", "this account is not linked to a supplier")
    return supplier_id


# ---------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------


class RegionController(Controller):
    path = "/api/regions"
    opt = {"exclude_from_auth": True}
    tags = ["catalog"]
    dependencies = PAGINATION

    @get("/")
    async def list_regions(self, page: Paging) -> RegionPage:
        items, total = await regions.list_regions(limit=page.limit, offset=page.offset)
        return RegionPage(items=items, total=total)

    @get("/{code:str}")
    async def get_region(self, code: Annotated[str, PathParameter(max_length=32, pattern=ONE_LINE)]) -> RegionOut:
        return await regions.get_region(code)


class CategoryController(Controller):
    path = "/api/categories"
    opt = {"exclude_from_auth": True}
    tags = ["catalog"]

    @get("/", sync_to_thread=False)
    def list_categories(self) -> CategoryList:
        return CategoryList(items=regions.list_categories())


class ProductController(Controller):
    """What anyone may see: listed products."""

    path = "/api/products"
    opt = {"exclude_from_auth": True}
    tags = ["catalog"]
    dependencies = PAGINATION

    @get("/", dependencies=PRODUCT_FILTERS)
    async def list_products(self, filters: Filters) -> ProductPage:
        items, total = await service.list_products(status=ProductStatus.listed, **filters)
        return ProductPage(items=items, total=total)

    @get("/{product_id:int}")
    async def get_product(self, product_id: PathId) -> ProductOut:
        return await service.get_product(product_id, listed_only=True)


class ImageController(Controller):
    """Product photos by content hash. A listed product's are public and cached for good
    (the URL never answers anything else); the others only to their supplier and admins."""

    path = images.IMAGE_PATH

    @get("/{name:str}", media_type=imaging.OUTPUT_TYPE, opt={"exclude_from_auth": True}, tags=["catalog"])
    async def image(self, name: FromPath[str], viewer: Viewer, file_store: Files, if_none_match: IfNoneMatch = None) -> Response:
        """`<sha256>.webp` with a strong `ETag` (the hash) and `Cache-Control`; a matching
        `If-None-Match` gets 304. Anyone else than who may see it: 404."""
        photo = await images.photo_file(name)
        if photo is None or not (photo.public or images.may_see(photo, await viewer())):
            raise DomainError("not_found", "no such image")
        cache = IMMUTABLE if photo.public else PRIVATE
        return file_response(file_store, photo.ref, if_none_match=if_none_match, cache_control=cache)


# ---------------------------------------------------------------------------
# Admin: reference data and review
# ---------------------------------------------------------------------------


class AdminRegionController(Controller):
    path = "/api/admin/regions"
    tags = ["catalog admin"]

    @post("/")
    async def create_region(self, request: Request[Any, Any, Any], data: JSONBody[RegionIn]) -> RegionOut:
        return await regions.create_region(data.code, data.name, data.province, data.paired_with)


class AdminSupplierController(Controller):
    path = "/api/admin/suppliers"
    tags = ["catalog admin"]
    dependencies = PAGINATION

    @post("/")
    async def create_supplier(self, request: Request[Any, Any, Any], data: JSONBody[SupplierIn]) -> SupplierOut:
        return await suppliers.create_supplier(data.name, data.regions)

    @get("/")
    async def list_suppliers(self, page: Paging) -> SupplierPage:
        items, total = await suppliers.list_suppliers(limit=page.limit, offset=page.offset)
        return SupplierPage(items=items, total=total)

    @get("/{supplier_id:int}")
    async def get_supplier(self, supplier_id: PathId) -> SupplierOut:
        return await suppliers.get_supplier(supplier_id)


class AdminReviewController(Controller):
    path = "/api/admin/reviews"
    tags = ["catalog admin"]
    dependencies = PAGINATION

    @get("/", dependencies=PRODUCT_FILTERS)
    async def pending(self, filters: Filters) -> ProductPage:
        """Products waiting for review, oldest first."""
        items, total = await service.list_products(status=ProductStatus.pending_review, **filters)
        return ProductPage(items=items, total=total)


class AdminProductController(Controller):
    path = "/api/admin/products"
    tags = ["catalog admin"]
    dependencies = PAGINATION

    @get("/", dependencies=PRODUCT_FILTERS)
    async def list_products(self, filters: Filters, status: StatusFilter = None) -> ProductPage:
        """Every product in any state (the review queue is `/api/admin/reviews`)."""
        items, total = await service.list_products(status=status, **filters)
        return ProductPage(items=items, total=total)

    @get("/{product_id:int}")
    async def get_product(self, product_id: PathId) -> ProductOut:
        return await service.get_product(product_id)

    @post("/{product_id:int}/approve", status_code=200)
    async def approve(self, request: Request[Any, Any, Any], product_id: PathId) -> ProductOut:
        return await service.approve_product(product_id, actor_id=request.user.id)

    @post("/{product_id:int}/reject", status_code=200)
    async def reject(self, request: Request[Any, Any, Any], product_id: PathId, data: JSONBody[ReasonIn]) -> ProductOut:
        return await service.reject_product(product_id, data.reason, actor_id=request.user.id)

    @post("/{product_id:int}/delist", status_code=200)
    async def delist(self, request: Request[Any, Any, Any], product_id: PathId, data: JSONBody[ReasonIn]) -> ProductOut:
        return await service.delist_product(product_id, data.reason, actor_id=request.user.id)


# ---------------------------------------------------------------------------
# Supplier: its own account and products
# ---------------------------------------------------------------------------


class SupplierMeController(Controller):
    path = "/api/supplier/me"
    tags = ["supplier"]

    @get("/")
    async def me(self, request: Request[Any, Any, Any]) -> SupplierOut:
        return await suppliers.get_supplier(_supplier_id(request))


class SupplierProductController(Controller):
    path = "/api/supplier/products"
    tags = ["supplier"]
    dependencies = PAGINATION

    @get("/", dependencies=PRODUCT_FILTERS)
    async def list_products(self, request: Request[Any, Any, Any], filters: Filters, status: StatusFilter = None) -> ProductPage:
        """The supplier's own products, in every state."""
        items, total = await service.list_products(status=status, **{**filters, "supplier_id": _supplier_id(request)})
        return ProductPage(items=items, total=total)

    @post("/")
    async def create_product(self, request: Request[Any, Any, Any], data: JSONBody[ProductIn]) -> ProductOut:
        return await service.create_product(_supplier_id(request), **msgspec.structs.asdict(data))

    @get("/{product_id:int}")
    async def get_product(self, request: Request[Any, Any, Any], product_id: PathId) -> ProductOut:
        return await service.get_product(product_id, supplier_id=_supplier_id(request))

    @patch("/{product_id:int}")
    async def update_product(
        self, request: Request[Any, Any, Any], product_id: PathId, data: JSONBody[ProductPatch]
    ) -> ProductOut:
        return await service.update_product(_supplier_id(request), product_id, data.changes())

    @post("/{product_id:int}/submit", status_code=200)
    async def submit(self, request: Request[Any, Any, Any], product_id: PathId) -> ProductOut:
        return await service.submit_product(_supplier_id(request), product_id, actor_id=request.user.id)

    @post("/{product_id:int}/images", request_max_body_size=PHOTO_BODY_MAX, opt={"problems": (400, 404, 409), "multipart": ("file",)})
    async def add_image(self, request: Request[Any, Any, Any], product_id: PathId, file_store: Files) -> ImageOut:
        """`multipart/form-data` with `file`: a JPEG, PNG or WebP (by content) of at most 5 MB and
        40 megapixels, else 400 `validation_failed` (a larger body is cut off at the limit). The
        shop keeps it re-encoded. A seventh photo: 409 `invalid_state`."""
        async with multipart_form(request, max_bytes=imaging.MAX_BYTES) as form:
            return await photos.add_photo(file_store, _supplier_id(request), product_id, upload_in(form), actor_id=request.user.id)

    @delete("/{product_id:int}/images/{image_id:int}")
    async def delete_image(self, request: Request[Any, Any, Any], product_id: PathId, image_id: PathId) -> None:
        await photos.delete_photo(_supplier_id(request), product_id, image_id, actor_id=request.user.id)


ROUTES: dict[str, list] = {
    "public": [RegionController, CategoryController, ProductController, ImageController],
    "admin": [AdminRegionController, AdminSupplierController, AdminReviewController, AdminProductController],
    "supplier": [SupplierMeController, SupplierProductController],
}
