"""Product photos (API.md "Product photos"): uploads recognised by content, re-encoded without
EXIF or GPS, at most 6 a product, served with Cache-Control, a strong ETag and 304, public only
while the product is listed; a change of a listed product's photos sends it back to review.
Against the real app, database and DATA_DIR."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import zlib

import pytest
from PIL import Image

from catalog.tables import ProductImage, ProductReview
from common.tables import StoredFile
from tests import test_catalog
from tests.conftest import assert_problem
from tests.test_catalog import add_union, new_product, product_in_state

world = test_catalog.world  # the fixture: two suppliers with a user each, an admin

FILES = os.path.join(os.environ["DATA_DIR"], "files")


# --- images, made here ------------------------------------------------------------------------


def jpeg_turned_on_its_side(size=(1600, 900)) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6), with a GPS position."""
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((20, 20, 220), (0, 0, size[0] // 4, size[1]))  # a blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "测试相机"
    exif[0x8825] = {1: "N", 2: (21.0, 39.0, 44.0), 3: "E", 4: (110.0, 55.0, 30.0)}  # 茂名
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=90)
    return buffer.getvalue()


def png_with_transparency(colour: tuple[int, int, int] = (30, 160, 60)) -> bytes:
    image = Image.new("RGBA", (900, 500), (0, 0, 0, 0))
    image.paste((*colour, 255), (200, 100, 700, 400))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def webp_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (240, 180, 20)).save(buffer, "WEBP")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A PNG whose header says width × height; its pixel data is whatever is given (garbage by default)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = pixels if pixels is not None else b"not deflated pixels at all" * 10
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def real_41_megapixel_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (8000, 5125)).save(buffer, "PNG")  # one colour: a few kilobytes
    return buffer.getvalue()


# --- helpers ----------------------------------------------------------------------------------


async def upload(api, product_id: int, content: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return await api.post(f"/api/supplier/products/{product_id}/images", files={"file": (name, content, content_type)})


def kept_files() -> set[str]:
    return {
        os.path.join(d, f) for d, _, names in os.walk(FILES) if not os.path.relpath(d, FILES).startswith("tmp") for f in names
    }


def in_progress() -> list[str]:
    tmp = os.path.join(FILES, "tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


async def state() -> tuple:
    """What an upload may leave behind: files on disk and rows."""
    return kept_files(), await StoredFile.count(), await ProductImage.count()


def opened(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


# --- uploads ----------------------------------------------------------------------------------


async def test_a_jpeg_is_turned_upright_and_loses_its_exif_and_gps(world):
    p = await new_product(world.sup_a)
    r = await upload(world.sup_a, p["id"], jpeg_turned_on_its_side())
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "url", "thumb_url"}
    assert body["url"].startswith("/images/") and body["url"].endswith(".webp")

    picture = await world.sup_a.get(body["url"])  # a draft's photo: its supplier may see it
    assert picture.status_code == 200, picture.text
    assert picture.headers["content-type"] == "image/webp"
    image = opened(picture.content)
    assert image.size == (675, 1200)  # portrait now, and at most 1200 px on the long side
    assert image.getpixel((337, 50))[2] > 150 and image.getpixel((337, 1150))[0] > 150  # the blue band went to the top
    assert not image.getexif() and not {"exif", "xmp", "icc_profile"} & set(image.info)
    assert b"Exif" not in picture.content and "测试相机".encode() not in picture.content
    thumb = opened((await world.sup_a.get(body["thumb_url"])).content)
    assert max(thumb.size) == 400 and thumb.size == (225, 400)

    product = (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()
    assert product["images"] == [body]


async def test_png_keeps_its_transparency_and_webp_is_taken(world):
    p = await new_product(world.sup_a)
    r = await upload(world.sup_a, p["id"], png_with_transparency(), "a.png", "image/png")
    assert r.status_code == 201, r.text
    image = opened((await world.sup_a.get(r.json()["url"])).content)
    assert image.mode == "RGBA" and image.size == (900, 500)
    assert image.getpixel((10, 10))[3] == 0 and image.getpixel((450, 250))[3] == 255
    r = await upload(world.sup_a, p["id"], webp_image(), "b.webp", "application/octet-stream")  # the type sent says nothing
    assert r.status_code == 201, r.text
    assert opened((await world.sup_a.get(r.json()["thumb_url"])).content).size == (400, 300)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        (b"I am text, whatever my name says", "photo.jpg", "JPEG, PNG or WebP"),
        (b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF", "photo.pdf", "JPEG, PNG or WebP"),
        (b"GIF89a" + b"\0" * 100, "photo.gif", "JPEG, PNG or WebP"),
        (b"\xff\xd8\xff\xe0 a JPEG's first bytes and nothing else", "cut.jpg", "cannot be read"),
        (real_41_megapixel_png(), "big.png", "8000×5125 pixels, more than 40 megapixels"),
        # pixel data that would fail to decode: refused for its size, so it was never decoded
        (png_claiming(8000, 5125), "bomb.png", "8000×5125 pixels, more than 40 megapixels"),
        (png_claiming(20000, 20000), "bigger.png", "more than 40 megapixels"),
        (b"\xff\xd8\xff\xe0" + b"\0" * (5 * 1024 * 1024), "large.jpg", "larger than 5 MB"),
    ],
)
async def test_what_is_not_a_photo_is_refused_and_leaves_nothing(world, content, name, says):
    p = await new_product(world.sup_a)
    before = await state()
    body = assert_problem(await upload(world.sup_a, p["id"], content, name), 400, "validation_failed")
    assert body["errors"][0]["field"] == "file" and says in body["errors"][0]["message"], body
    assert await state() == before and in_progress() == []


async def test_a_request_without_a_file_is_refused(world):
    p = await new_product(world.sup_a)
    url = f"/api/supplier/products/{p['id']}/images"
    assert_problem(await world.sup_a.post(url, json={"file": "x"}), 400, "validation_failed")
    assert_problem(await world.sup_a.post(url, data={"file": "not a file part"}), 400, "validation_failed")
    broken = await world.sup_a.post(url, content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data; boundary=x"})
    assert_problem(broken, 400, "validation_failed")


async def test_at_most_six_a_product_and_the_seventh_leaves_nothing(world):
    p = await new_product(world.sup_a)
    photo = jpeg_turned_on_its_side((800, 600))
    for _ in range(6):
        assert (await upload(world.sup_a, p["id"], photo)).status_code == 201
    before = await state()
    body = assert_problem(await upload(world.sup_a, p["id"], webp_image(), "new.webp"), 409, "invalid_state")
    assert body["max_images"] == 6
    assert await state() == before and in_progress() == []
    assert len((await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()["images"]) == 6


async def test_uploads_at_once_never_make_a_seventh(world):
    import asyncio

    p = await new_product(world.sup_a)
    for _ in range(5):
        assert (await upload(world.sup_a, p["id"], webp_image())).status_code == 201
    colours = [tuple(random.randrange(256) for _ in range(3)) for _ in range(3)]
    answers = await asyncio.gather(*[upload(world.sup_a, p["id"], png_with_transparency(c), "a.png") for c in colours])
    assert sorted(r.status_code for r in answers) == [201, 409, 409]
    assert await ProductImage.count() == 6 and in_progress() == []


async def test_the_same_photo_twice_is_stored_once(world):
    p, q = await new_product(world.sup_a), await new_product(world.sup_a, title="茂名荔枝干 500克")
    files, rows, _ = await state()
    photo = png_with_transparency(tuple(random.randrange(256) for _ in range(3)))  # not on disk from another test
    first = (await upload(world.sup_a, p["id"], photo, "a.png")).json()
    second = (await upload(world.sup_a, q["id"], photo, "again.png")).json()
    assert first["id"] != second["id"] and (first["url"], first["thumb_url"]) == (second["url"], second["thumb_url"])
    after, rows_after, _ = await state()
    assert len(after - files) == 2 and rows_after == rows + 2  # the picture and its thumbnail, once


async def test_another_suppliers_product_is_refused_as_the_other_endpoints_do(world, make_user):
    p = await new_product(world.sup_a)
    image = (await upload(world.sup_a, p["id"], webp_image())).json()
    assert_problem(await world.sup_b.get(f"/api/supplier/products/{p['id']}"), 403, "forbidden")
    before = await state()
    assert_problem(await upload(world.sup_b, p["id"], webp_image()), 403, "forbidden")
    assert_problem(await world.sup_b.delete(f"/api/supplier/products/{p['id']}/images/{image['id']}"), 403, "forbidden")
    buyer = await make_user("buyer", union_id=await add_union())
    assert_problem(await upload(buyer, p["id"], webp_image()), 403, "forbidden")
    assert_problem(await upload(world.sup_a.__class__(world.sup_a.client), p["id"], webp_image()), 401, "unauthenticated")
    assert_problem(await upload(world.sup_a, 999_999, webp_image()), 404, "not_found")
    assert await state() == before


async def test_delete_a_photo(world):
    p, q = await new_product(world.sup_a), await new_product(world.sup_a, title="化州橘红 100克")
    first = (await upload(world.sup_a, p["id"], webp_image())).json()
    second = (await upload(world.sup_a, p["id"], png_with_transparency(), "a.png")).json()
    url = f"/api/supplier/products/{p['id']}/images/{first['id']}"
    assert_problem(await world.sup_a.delete(f"/api/supplier/products/{q['id']}/images/{first['id']}"), 404, "not_found")
    r = await world.sup_a.delete(url)
    assert r.status_code == 204, r.text
    assert (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()["images"] == [second]
    assert_problem(await world.sup_a.delete(url), 404, "not_found")
    assert_problem(await world.sup_a.get(first["url"]), 404, "not_found")  # no product shows it any more
    assert_problem(await world.sup_a.delete(f"/api/supplier/products/{p['id']}/images/99999999999"), 404, "not_found")


# --- review -----------------------------------------------------------------------------------


async def reviews_of(product_id: int) -> list[tuple[str, str]]:
    rows = await ProductReview.select(ProductReview.action, ProductReview.reason).where(ProductReview.product == product_id).order_by(ProductReview.id)
    return [(r["action"], r["reason"]) for r in rows]


async def test_changing_a_listed_products_photos_sends_it_back_to_review(world):
    p = await product_in_state(world, "listed")
    image = (await upload(world.sup_a, p["id"], webp_image())).json()
    product = (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()
    assert product["status"] == "pending_review"
    assert (await reviews_of(p["id"]))[-1] == ("resubmitted", f"photo #{image['id']} added")
    assert (await world.admin.post(f"/api/admin/products/{p['id']}/approve")).json()["status"] == "listed"
    assert (await world.sup_a.delete(f"/api/supplier/products/{p['id']}/images/{image['id']}")).status_code == 204
    assert (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()["status"] == "pending_review"
    assert (await reviews_of(p["id"]))[-1] == ("resubmitted", f"photo #{image['id']} removed")
    trail = (await world.admin.get("/api/audit/events", params={"action": "product_resubmitted"})).json()
    assert trail["total"] == 2 and trail["items"][0]["detail"] == f"photo #{image['id']} removed"
    assert trail["items"][0]["actor"]["username"] == world.sup_a.user["username"]


@pytest.mark.parametrize("status", ["draft", "pending_review", "rejected"])
async def test_other_states_keep_their_state(world, status):
    p = await product_in_state(world, status)
    before = await reviews_of(p["id"])
    assert (await upload(world.sup_a, p["id"], webp_image())).status_code == 201
    assert (await world.sup_a.get(f"/api/supplier/products/{p['id']}")).json()["status"] == status
    assert await reviews_of(p["id"]) == before


async def test_a_delisted_product_is_frozen(world):
    p = await product_in_state(world, "delisted")
    before = await state()
    assert_problem(await upload(world.sup_a, p["id"], webp_image()), 409, "invalid_state")
    assert await state() == before


# --- serving ----------------------------------------------------------------------------------


async def test_a_listed_products_photos_are_public_cached_and_answer_304(world, anon):
    p = await product_in_state(world, "pending_review")
    image = (await upload(world.sup_a, p["id"], jpeg_turned_on_its_side())).json()
    await world.admin.post(f"/api/admin/products/{p['id']}/approve")
    public = (await anon.get(f"/api/products/{p['id']}")).json()
    assert public["images"] == [image]
    r = await anon.get(image["url"])
    assert r.status_code == 200
    sha = hashlib.sha256(r.content).hexdigest()
    assert image["url"] == f"/images/{sha}.webp"
    assert r.headers["etag"] == f'"{sha}"'  # strong: the content's hash
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    for tag in (f'"{sha}"', f'W/"{sha}"', f'"other", "{sha}"', "*"):
        again = await anon.get(image["url"], headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", tag
        assert again.headers["etag"] == f'"{sha}"' and "immutable" in again.headers["cache-control"]
    assert (await anon.get(image["url"], headers={"If-None-Match": '"other"'})).status_code == 200
    assert (await anon.get(image["url"], headers={"Authorization": "Bearer not-a-token"})).status_code == 200
    listed = (await anon.get("/api/products")).json()["items"]
    assert [x["images"] for x in listed if x["id"] == p["id"]] == [[image]]


async def test_an_unlisted_products_photos_only_to_its_supplier_and_admins(world, anon):
    p = await new_product(world.sup_a)
    image = (await upload(world.sup_a, p["id"], webp_image())).json()
    for who in (anon, world.sup_b):
        assert_problem(await who.get(image["url"]), 404, "not_found")
        assert_problem(await who.get(image["thumb_url"]), 404, "not_found")
    assert_problem(await anon.get(image["url"], headers={"Authorization": "Bearer not-a-token"}), 404, "not_found")
    for who in (world.sup_a, world.admin):
        r = await who.get(image["url"])
        assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
        assert (await who.get(image["url"], headers={"If-None-Match": r.headers["etag"]})).status_code == 304
    assert_problem(await anon.get(f"/api/products/{p['id']}"), 404, "not_found")


@pytest.mark.parametrize("name", ["nothing", "0" * 64 + ".webp", "%00.webp", "A" * 64 + ".webp"])
async def test_names_that_are_no_photo_are_not_found(world, anon, name):
    assert_problem(await anon.get(f"/images/{name}"), 404, "not_found")


async def test_a_path_out_of_the_images_reaches_no_file(world, anon):
    # the client resolves the dots: what arrives is /secret_key, a page that does not exist
    r = await anon.get("/images/../../secret_key")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    r = await anon.get("/images/..%2F..%2Fsecret_key")
    assert_problem(r, 404, "not_found")


async def test_a_photos_other_extension_is_not_found(world, anon):
    p = await product_in_state(world, "pending_review")
    image = (await upload(world.sup_a, p["id"], webp_image())).json()
    await world.admin.post(f"/api/admin/products/{p['id']}/approve")
    assert (await anon.get(image["url"])).status_code == 200
    assert_problem(await anon.get(image["url"].replace(".webp", ".jpg")), 404, "not_found")


# --- a large body is cut off at the limit -----------------------------------------------------

MB = 1024 * 1024
CHUNK = 64 * 1024
MULTIPART_HEAD = (
    b'--cut\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0'
)


async def test_a_50_mb_body_is_read_only_up_to_the_limit(world):
    """The body is streamed to the app chunk by chunk (httpx's ASGI transport pulls them as the
    app asks): the app stops asking at the route's limit, so the rest is never even produced."""
    from catalog.api import PHOTO_BODY_MAX

    p = await new_product(world.sup_a)
    produced = 0

    async def fifty_megabytes():
        nonlocal produced
        produced += len(MULTIPART_HEAD)
        yield MULTIPART_HEAD
        while produced < 50 * MB:
            produced += CHUNK
            yield b"\0" * CHUNK
        yield b"\r\n--cut--\r\n"

    before = await state()
    r = await world.sup_a.post(
        f"/api/supplier/products/{p['id']}/images", content=fifty_megabytes(), headers={"content-type": "multipart/form-data; boundary=cut"}
    )
    body = assert_problem(r, 400, "validation_failed")
    assert body["errors"] == [{"field": "file", "message": "the file is larger than 5 MB"}]
    assert PHOTO_BODY_MAX < produced <= PHOTO_BODY_MAX + CHUNK  # read up to the limit, not 50 MB
    assert await state() == before and in_progress() == []


async def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(world):
    p = await new_product(world.sup_a)
    r = await world.sup_a.post(
        f"/api/supplier/products/{p['id']}/images",
        content=MULTIPART_HEAD,
        headers={"content-type": "multipart/form-data; boundary=cut", "content-length": str(50 * MB)},
    )
    assert assert_problem(r, 400, "validation_failed")["errors"][0]["message"] == "the file is larger than 5 MB"


async def test_the_schema_describes_the_upload_and_the_image_route(client):
    schema = (await client.get("/schema/openapi.json")).json()
    upload = schema["paths"]["/api/supplier/products/{product_id}/images"]["post"]
    assert upload["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] == ["file"]
    assert {"400", "401", "403", "404", "409"} <= set(upload["responses"]) and "413" not in upload["responses"]
    assert "204" in schema["paths"]["/api/supplier/products/{product_id}/images/{image_id}"]["delete"]["responses"]
    image = schema["paths"]["/images/{name}"]["get"]
    assert image["security"] == [] and "404" in image["responses"]
    assert "image/webp" in image["responses"]["200"]["content"]


# --- the demo seeds ---------------------------------------------------------------------------


async def test_the_demo_seeds_draw_the_maoming_products_pictures_once(app, anon):
    import json
    import time

    from catalog.tables import Product
    from shop.seed import SEEDS_DIR, seed

    started = time.monotonic()
    assert (await seed())["pictures"] == 16
    assert time.monotonic() - started < 30  # a few seconds on a quiet machine
    statuses = {r["title"]: r["status"] for r in await Product.select(Product.title, Product.status)}
    seeded = {p["title"]: p["status"] for p in json.loads((SEEDS_DIR / "products.json").read_text(encoding="utf-8"))}
    assert statuses == seeded  # drawing pictures sent nothing back to review
    maoming = (await anon.get("/api/products", params={"region": "maoming", "limit": 200})).json()["items"]
    assert maoming and all(len(p["images"]) == 1 for p in maoming)
    picture = await anon.get(maoming[0]["images"][0]["url"])
    assert picture.status_code == 200 and opened(picture.content).size == (1200, 900)
    rows, files = await ProductImage.count(), kept_files()
    await seed()
    assert await ProductImage.count() == rows == 16 and kept_files() == files
