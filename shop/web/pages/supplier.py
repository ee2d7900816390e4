"""The supplier's products (create, edit, photos, submit for review) and orders."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from catalog import imaging, photos, regions, suppliers
from catalog import service as catalog
from catalog.images import MAX_IMAGES
from catalog.tables import ProductStatus
from common.errors import DomainError
from common.files import FileStore, body_limit, multipart_form, upload_in
from common.schemas import PathId
from shop.orders import queries
from shop.web import ui
from shop.web.forms import PRODUCT_FIELDS, page_number, product_form
from shop.web.render import PAGE_SIZE, Page, is_htmx, pager, render, status_of

# --- supplier ----------------------------------------------------------------------------------------------


async def _posted_product(request: Request, *, editing: bool = False) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The product form as posted: (values for the service, problems by field, what to show again)."""
    form = await request.form()
    values, problems = product_form(form, editing=editing)
    return values, problems, {f: str(form.get(f) or "") for f in PRODUCT_FIELDS}


def _big_change(old_fen: int, new_fen: int) -> bool:
    """A listed product's price moving by more than half (either way) is confirmed first."""
    return new_fen * 2 < old_fen or new_fen * 2 > old_fen * 3


class SupplierPages(Page):
    async def _regions_of_supplier(self, request: Request) -> list[Any]:
        supplier = await suppliers.get_supplier(request.user.supplier_id)
        return [await regions.get_region(code) for code in supplier.regions]

    async def _form(
        self,
        request: Request,
        product: Any | None,
        values: dict[str, Any],
        problems: dict[str, str],
        error: Any = None,
        status_code: int = 200,
        price_change: dict[str, int] | None = None,
    ) -> Template:
        return render(
            request,
            "supplier_product_form.html",
            status_code=status_code,
            product=product,
            values=values,
            problems=problems,
            error=error,
            price_change=price_change,
            regions=await self._regions_of_supplier(request),
            categories=regions.CATEGORIES,
            max_images=MAX_IMAGES,
        )

    @get("/supplier/products")
    async def products(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.PRODUCT_STATES else None
        number = page_number(page)
        items, total = await catalog.list_products(
            supplier_id=request.user.supplier_id, status=status, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        supplier = await suppliers.get_supplier(request.user.supplier_id)
        return render(
            request, "supplier_products.html", products=items, pager=pager(total, number), status=status, states=ui.PRODUCT_STATES, supplier=supplier
        )

    @get("/supplier/products/new")
    async def new(self, request: Request) -> Template:
        values = {"title": "", "region": "", "category": "", "unit": "", "price": "", "stock": "", "description": ""}
        return await self._form(request, None, values, {})

    @post("/supplier/products", status_code=200)
    async def create(self, request: Request) -> Response:
        values, problems, shown = await _posted_product(request)
        if problems:
            return await self._form(request, None, shown, problems, status_code=400)
        try:
            await catalog.create_product(request.user.supplier_id, **values)
        except DomainError as exc:
            return await self._form(request, None, shown, {}, error=ui.explain(exc), status_code=status_of(exc))
        return Redirect(path="/supplier/products?ok=created", status_code=303)

    @get("/supplier/products/{product_id:int}/edit")
    async def edit(self, request: Request, product_id: PathId) -> Template:
        return await self._edit_form(request, product_id)

    async def _edit_form(self, request: Request, product_id: int, error: Any = None, status_code: int = 200) -> Template:
        product = await catalog.get_product(product_id, supplier_id=request.user.supplier_id)
        values = {
            "title": product.title,
            "region": product.region,
            "category": product.category,
            "unit": product.unit,
            "price": ui.yuan_plain(product.price_fen),
            "stock": str(product.stock),
            "stock_shown": str(product.stock),
            "description": product.description,
        }
        return await self._form(request, product, values, {}, error=error, status_code=status_code)

    @post("/supplier/products/{product_id:int}", status_code=200)
    async def update(self, request: Request, product_id: PathId) -> Response:
        product = await catalog.get_product(product_id, supplier_id=request.user.supplier_id)
        values, problems, shown = await _posted_product(request, editing=True)
        if problems:
            return await self._form(request, product, shown, problems, status_code=400)
        new_price = values["price_fen"]
        if product.status == ProductStatus.listed and _big_change(product.price_fen, new_price):
            form = await request.form()
            if str(form.get("confirm_price") or "") != str(new_price):  # said once, then confirmed
                change = {"old": product.price_fen, "new": new_price, "pct": ui.price_change_pct(product.price_fen, new_price)}
                return await self._form(request, product, shown, {}, status_code=200, price_change=change)
        try:
            await catalog.update_product(request.user.supplier_id, product_id, values)
        except DomainError as exc:
            return await self._form(request, product, shown, {}, error=ui.explain(exc), status_code=status_of(exc))
        return Redirect(path="/supplier/products?ok=saved", status_code=303)

    @post("/supplier/products/{product_id:int}/images", status_code=200, request_max_body_size=body_limit(imaging.MAX_BYTES))
    async def add_image(self, request: Request, product_id: PathId, file_store: NamedDependency[FileStore]) -> Response:
        was = (await catalog.get_product(product_id, supplier_id=request.user.supplier_id)).status
        try:
            async with multipart_form(request, max_bytes=imaging.MAX_BYTES) as form:
                await photos.add_photo(file_store, request.user.supplier_id, product_id, upload_in(form), actor_id=request.user.id)
        except DomainError as exc:
            return await self._edit_form(request, product_id, error=ui.explain(exc), status_code=status_of(exc))
        return self._back_to_photos(product_id, "photo_added", was)

    @post("/supplier/products/{product_id:int}/images/{image_id:int}/delete", status_code=200)
    async def delete_image(self, request: Request, product_id: PathId, image_id: PathId) -> Response:
        was = (await catalog.get_product(product_id, supplier_id=request.user.supplier_id)).status
        try:
            await photos.delete_photo(request.user.supplier_id, product_id, image_id, actor_id=request.user.id)
        except DomainError as exc:
            return await self._edit_form(request, product_id, error=ui.explain(exc), status_code=status_of(exc))
        return self._back_to_photos(product_id, "photo_removed", was)

    @staticmethod
    def _back_to_photos(product_id: int, notice: str, was: str) -> Redirect:
        notice = "photo_review" if was == ProductStatus.listed else notice
        return Redirect(path=f"/supplier/products/{product_id}/edit?ok={notice}#photos", status_code=303)

    @post("/supplier/products/{product_id:int}/submit", status_code=200)
    async def submit(self, request: Request, product_id: PathId) -> Response:
        product = await catalog.submit_product(request.user.supplier_id, product_id, actor_id=request.user.id)
        if is_htmx(request):
            return render(request, "_supplier_product_row.html", p=product)
        return Redirect(path="/supplier/products?ok=submitted", status_code=303)

    @get("/supplier/orders")
    async def orders(self, request: Request, status: FromQuery[str | None] = None, page: FromQuery[str | None] = None) -> Template:
        status = status if status in ui.ORDER_STATES else None
        number = page_number(page)
        items, total = await queries.list_orders(request.user, status=status, year=None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return render(request, "supplier_orders.html", orders=items, pager=pager(total, number), status=status, states=ui.ORDER_STATES)
