"""The public catalogue: products from the paired regions, with filters."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Template

from budgets import unions
from catalog import regions
from catalog import service as catalog
from catalog.tables import ProductStatus, RegionPairing
from common.schemas import PathId, query_name
from shop.web.forms import page_number
from shop.web.render import PAGE_SIZE, Page, optional_user, pager, render

# --- the public catalog -----------------------------------------------------------------------


async def listed_regions() -> list[Any]:
    items, _ = await regions.list_regions(limit=200)
    return items


async def _paired_unions() -> list[dict[str, str]]:
    """The unions some region is paired with (the 对口地区 filter), by code."""
    codes = sorted({r["union_code"] for r in await RegionPairing.select(RegionPairing.union_code)})
    if not codes:
        return []
    names = await unions.names_by_code(codes)
    return [{"code": c, "name": names.get(c, c)} for c in codes]


def catalog_filters(region: str | None, category: str | None, q: str | None) -> dict[str, Any]:
    """Filters as the service takes them; anything malformed is simply dropped."""
    region = region if region and len(region) <= 32 and region.replace("-", "").isalnum() and region.islower() else None
    category = category if category in regions.CATEGORIES else None
    q = (q or "").strip()[:100] or None
    return {"region": region, "category": category, "q": q}


class CatalogPages(Page):
    opt = {"exclude_from_auth": True}

    @get("/products")
    async def products(
        self,
        request: Request,
        region: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        paired_with: FromQuery[str | None] = None,
        q: Annotated[str | None, query_name(100)] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:
        user = await optional_user(request)
        filters = catalog_filters(region, category, q)
        paired = paired_with if paired_with and len(paired_with) <= 32 and paired_with.replace("-", "").isalnum() else None
        number = page_number(page)
        items, total = await catalog.list_products(
            status=ProductStatus.listed, paired_with=[paired] if paired else None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, **filters
        )
        return render(
            request,
            "products.html",
            user=user,
            products=items,
            pager=pager(total, number),
            regions=await listed_regions(),
            categories=regions.CATEGORIES,
            paired_unions=await _paired_unions(),
            filters={**filters, "paired_with": paired},
        )

    @get("/products/{product_id:int}")
    async def product(self, request: Request, product_id: PathId) -> Template:
        user = await optional_user(request)
        product = await catalog.get_product(product_id, listed_only=True)
        region = await regions.get_region(product.region)
        return render(request, "product.html", user=user, product=product, region=region)
