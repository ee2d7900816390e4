"""Product photos on the pages: the supplier uploads and deletes them on the product's edit page
(a multipart form with the CSRF token), the catalogue, the product page and the basket show
them, and the category glyph stands in where there is none."""

from __future__ import annotations

import re

import pytest

from catalog.tables import Product, ProductImage
from tests.test_photos import jpeg_turned_on_its_side, png_claiming, webp_image
from tests.test_web import as_user, text_of, token
from tests.world import build_world

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


async def post_file(client, url: str, content: bytes, name: str = "photo.jpg", csrf: bool = True):
    data = {"_csrf_token": await token(client)} if csrf else {}
    return await client.post(url, data=data, files={"file": (name, content, "image/jpeg")})


async def test_the_supplier_uploads_and_deletes_photos_on_the_edit_page(client, make_user, admin):
    world = await build_world(make_user, admin)
    draft = world.products["draft"]
    await as_user(client, world.supplier_user)
    page = await client.get(f"/supplier/products/{draft}/edit")
    assert 'enctype="multipart/form-data"' in page.text and "还没有图片" in page.text and "0 / 6" in page.text

    r = await post_file(client, f"/supplier/products/{draft}/images", jpeg_turned_on_its_side())
    assert r.status_code == 303 and r.headers["location"] == f"/supplier/products/{draft}/edit?ok=photo_added#photos"
    image = await ProductImage.select(ProductImage.id).where(ProductImage.product == draft).first()
    page = await client.get(r.headers["location"])
    assert "图片已上传" in page.text and "1 / 6" in page.text
    thumb = re.search(r'<img src="(/images/[0-9a-f]{64}\.webp)" alt="图片 1"', page.text)
    assert thumb and (await client.get(thumb[1])).status_code == 200  # the cookie shows the supplier its draft's photo

    r = await post_file(client, f"/supplier/products/{draft}/images", b"plain text", "notes.jpg")
    assert r.status_code == 400 and "图片须为 JPEG、PNG 或 WebP 格式" in text_of(r.text)
    r = await post_file(client, f"/supplier/products/{draft}/images", png_claiming(8000, 6000), "huge.png")
    assert r.status_code == 400 and "图片为 8000×6000 像素，超过 40 百万像素" in text_of(r.text)
    r = await post_file(client, f"/supplier/products/{draft}/images", webp_image(), csrf=False)
    assert r.status_code == 403 and await ProductImage.count() == 1  # no CSRF token: nothing stored

    r = await client.post(f"/supplier/products/{draft}/images/{image['id']}/delete", data={"_csrf_token": await token(client)})
    assert r.status_code == 303 and "ok=photo_removed" in r.headers["location"]
    assert await ProductImage.count() == 0
    assert (await client.get(f"/supplier/products/{world.products['lychee']}/edit")).status_code == 403
    r = await post_file(client, f"/supplier/products/{world.products['lychee']}/images", webp_image())
    assert r.status_code == 403 and await ProductImage.count() == 0


async def test_a_listed_product_says_it_went_back_to_review(client, make_user, admin):
    world = await build_world(make_user, admin)
    tea = world.products["tea"]
    await as_user(client, world.supplier_user)
    r = await post_file(client, f"/supplier/products/{tea}/images", webp_image())
    assert r.status_code == 303 and "ok=photo_review" in r.headers["location"]
    assert "商品已转为待审核" in (await client.get(r.headers["location"])).text
    assert (await Product.select(Product.status).where(Product.id == tea).first())["status"] == "pending_review"


async def test_a_file_over_5_mb_is_refused_on_the_page(client, make_user, admin):
    world = await build_world(make_user, admin)
    await as_user(client, world.supplier_user)
    url = f"/supplier/products/{world.products['draft']}/images"
    r = await post_file(client, url, b"\xff\xd8\xff\xe0" + b"\0" * (5 * 1024 * 1024))  # within the body's limit: the form says why
    assert r.status_code == 400 and "文件：文件超过 5 MB" in text_of(r.text)
    r = await post_file(client, url, b"\xff\xd8\xff\xe0" + b"\0" * (6 * 1024 * 1024))  # cut off while the CSRF check reads the form
    assert r.status_code == 413 and "文件太大" in text_of(r.text)
    assert await ProductImage.count() == 0


async def test_the_catalogue_product_page_and_basket_show_photos_or_the_glyph(client, make_user, admin):
    world = await build_world(make_user, admin)
    r = await world.supplier_user.post(
        f"/api/supplier/products/{world.products['tea']}/images", files={"file": ("a.jpg", jpeg_turned_on_its_side(), "image/jpeg")}
    )
    image = r.json()
    await world.admin.post(f"/api/admin/products/{world.products['tea']}/approve")
    catalogue = (await client.get("/products")).text
    assert f'<img src="{image["thumb_url"]}" alt="毕节高山绿茶 250克"' in catalogue
    assert '<div class="thumb grain_oil" aria-hidden="true">' in catalogue  # the rice has no photo: its glyph
    product = (await client.get(f"/products/{world.products['tea']}")).text
    assert f'<img src="{image["url"]}" alt="毕节高山绿茶 250克"' in product
    await as_user(client, world.buyer)
    r = await client.post("/shop/basket", data={"_csrf_token": await token(client), "product_id": world.products["tea"], "op": "add"})
    assert r.status_code in (200, 303)
    shop = (await client.get("/shop")).text
    assert f'<div class="mini photo"><img src="{image["thumb_url"]}"' in shop
    assert f'<div class="thumb photo"><img src="{image["thumb_url"]}"' in shop
