"""F-HTTP and F-HTTP-list: the framework floor. A bare Litestar app (the project's Litestar
version), served by uvicorn with 2 workers like the project. run.py starts it; by hand, from
this directory:

    FLOOR_DSN=postgresql://postgres@127.0.0.1:5432/shop_floor \\
      $PROJECT/.venv/bin/python -m uvicorn floor_app:app --port 18601 --workers 2 --no-access-log

POST /api/orders   body {"lines":[{"product_id","quantity"}], "members":[ids]} decoded by
                   Litestar with msgspec into the same struct shape, Idempotency-Key header;
                   runs floor_tx.place() (the F-DB transaction) on an asyncpg pool (10 per
                   worker, like the project's PG_POOL_MAX) and answers 201 with an order JSON
                   of the project's shape (built from what the transaction returned; no re-read).
                   No authentication (the project does JWT + a user lookup per request).
GET /api/products  same query parameters (limit, offset, paired_with, q), the same two SQL
                   statements the project sends (rows + count, as PostgreSQL receives them from
                   the project), on one pooled connection; answers the same JSON bytes (same
                   msgspec structs; bench_listing.py compares them before measuring).
GET /ready         200.

This copy (tests/perf/floor/, from ../shared/bench/) follows the project since product photos
and the order's delivery and shipments: the listing answers `images` (the rows with their count
in one statement, as the project now sends them, then the page's photos) and the order answer
carries `delivery` and `shipments`, so the bytes stay the project's.

Like floor_tx.py, the listing SQL below names the project's current tables and columns: update
it when the project's schema or its listing query changes.
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.params import Parameter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import floor_tx  # noqa: E402

DSN = os.environ.get("FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/shop_floor")
BRANCH = int(os.environ.get("FLOOR_BRANCH", "0"))  # 0: the bench buyer's branch, looked up at start
TZ = ZoneInfo("Asia/Shanghai")
CATEGORIES = {
    "fruit": "水果", "tea": "茶叶", "grain_oil": "粮油", "dried": "干货山珍", "aquatic": "水产",
    "meat_egg": "肉禽蛋", "herbal": "南药滋补", "snack": "休闲食品", "other": "其他",
}
BANK = {"bank_name": "中国工商银行广州分行营业部", "account_name": "消费帮扶商城运营有限公司", "account_no": "3602000000000000000"}

Id = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]


class LineIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: Id
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class OrderIn(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[LineIn], msgspec.Meta(min_length=1, max_length=100)]
    members: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=5000)] | None = None


class LineOut(msgspec.Struct, kw_only=True):
    id: int
    product_id: int
    title: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    refunded_quantity: int
    supplier_id: int
    region: str


class AllocationOut(msgspec.Struct, kw_only=True):
    member_id: int
    amount_fen: int
    refunded_fen: int = 0


class BankOut(msgspec.Struct, kw_only=True):
    bank_name: str
    account_name: str
    account_no: str


class PaymentOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    provider: str
    reference: str
    expires_at: str
    url: str | None = None
    bank: BankOut | None = None


class OrderOut(msgspec.Struct, kw_only=True):
    id: int
    status: str
    branch_id: int
    year: int
    total_fen: int
    refunded_fen: int
    created_at: str
    lines: list[LineOut]
    allocations: list[AllocationOut]
    payment: PaymentOut
    needs_refund: bool = False
    delivery: dict | None = None  # the project's order answer has these two since the shipments issue
    shipments: list = []


class ImageOut(msgspec.Struct, kw_only=True):
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
    status: str
    description: str
    review_note: str
    created_at: datetime
    updated_at: datetime
    images: list[ImageOut] = []


class ProductPage(msgspec.Struct, kw_only=True):
    items: list[ProductOut]
    total: int


class Problem(msgspec.Struct):
    code: str
    detail: str


POOL = None
_encoder = msgspec.json.Encoder()


@asynccontextmanager
async def lifespan(app: Litestar):
    global POOL, BRANCH
    POOL = await floor_tx.make_pool(DSN, 1, int(os.environ.get("FLOOR_POOL_MAX", "10")))
    async with POOL.acquire() as con:
        await floor_tx.check_schema(con)  # refuse to start on a schema the floor does not fit
    if not BRANCH:
        BRANCH = await POOL.fetchval("SELECT \"union\" FROM shop_user WHERE username='bench'")
    try:
        yield
    finally:
        await POOL.close()


@get("/ready", sync_to_thread=False)
def ready() -> dict:
    return {"ok": True}


def _iso(v: datetime) -> str:
    return v.astimezone(timezone.utc).isoformat()


@post("/api/orders")
async def place(request: Request, data: OrderIn) -> Response:
    key = request.headers.get("idempotency-key", "")
    if not 1 <= len(key) <= 64 or data.members is None or len(data.lines) != 1:
        return Response(Problem("validation_failed", "key, members, one line"), status_code=422)
    digest = hashlib.sha256(_encoder.encode(data)).hexdigest()
    line = data.lines[0]
    try:
        r = await floor_tx.place(POOL, branch=BRANCH, user_id=1, product_id=line.product_id, quantity=line.quantity,
                                 members=data.members, key=key, digest=digest)
    except floor_tx.Refused as exc:
        return Response(Problem(exc.code, exc.detail), status_code=exc.status)
    if not r["created"]:
        return Response({"id": r["id"]}, status_code=200)
    l = r["line"]
    out = OrderOut(
        id=r["id"], status="pending_payment", branch_id=BRANCH, year=r["year"], total_fen=r["total"], refunded_fen=0,
        created_at=_iso(r["now"]),
        lines=[LineOut(refunded_quantity=0, **l)],
        allocations=[AllocationOut(member_id=m, amount_fen=a) for m, a in r["shares"]],
        payment=PaymentOut(provider="transfer", reference=f"XFBF{r['id']:08d}", expires_at=_iso(r["expires"]), bank=BankOut(**BANK)),
    )
    return Response(out, status_code=201)


# The project's two listing statements, as PostgreSQL receives them from the project (rows, then count).
_COLS = (
    "SELECT p.id, p.title, r.code AS region_code, r.name AS region_name, p.category, p.unit, p.price_fen, p.stock, "
    "p.supplier AS supplier_id, s.name AS supplier_name, p.status, p.description, p.review_note, p.created_at, "
    "p.updated_at, count(*) OVER () AS full_count FROM catalog_product p "
    "LEFT JOIN catalog_region r ON r.id = p.region LEFT JOIN catalog_supplier s ON s.id = p.supplier WHERE "
)


# and the photos of the page's products (the project's catalog/images.py: images_of)
_IMAGES = (
    "SELECT i.id, i.product, f1.sha256 AS picture_sha, f1.content_type AS picture_type, f2.sha256 AS thumb_sha, "
    "f2.content_type AS thumb_type FROM catalog_product_image i LEFT JOIN common_stored_file f1 ON f1.id = i.picture "
    "LEFT JOIN common_stored_file f2 ON f2.id = i.thumbnail WHERE i.product IN ({ids}) ORDER BY i.id"
)


def _like(text: str) -> str:  # the project's common.sql.like_pattern
    return "%" + text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


@get("/api/products")
async def products(
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    offset: Annotated[int, Parameter(ge=0)] = 0,
    paired_with: list[str] | None = None,
    q: str | None = None,
) -> Response:
    where = ["p.status = $1"]
    args: list = ["listed"]
    if paired_with:
        codes = sorted(set(paired_with))
        ph = ", ".join(f"${len(args) + i + 1}" for i in range(len(codes)))
        where.append(f"p.region IN (SELECT region FROM catalog_region_pairing WHERE union_code IN ({ph}))")
        args += codes
    if q is not None and (q := q.strip()):
        n = len(args)
        where.append(f"(LOWER(p.title) LIKE ${n + 1} ESCAPE '!' OR LOWER(p.description) LIKE ${n + 2} ESCAPE '!')")
        args += [_like(q), _like(q)]
    cond = " AND ".join(where)
    rows_sql = _COLS + cond + f" ORDER BY p.id LIMIT {limit} OFFSET {offset}"
    count_sql = "SELECT count(*) AS n FROM catalog_product p WHERE " + cond
    async with POOL.acquire() as con:
        rows = await con.fetch(rows_sql, *args)
        total = rows[0]["full_count"] if rows else await con.fetchval(count_sql, *args)
        images: dict[int, list[ImageOut]] = {}
        if rows:
            ids = ", ".join(str(i) for i in sorted({r["id"] for r in rows}))
            for i in await con.fetch(_IMAGES.format(ids=ids)):
                images.setdefault(i["product"], []).append(
                    ImageOut(id=i["id"], url=f"/images/{i['picture_sha']}.webp", thumb_url=f"/images/{i['thumb_sha']}.webp")
                )
    items = [
        ProductOut(
            id=r["id"], title=r["title"], region=r["region_code"], region_name=r["region_name"], category=r["category"],
            category_name=CATEGORIES.get(r["category"], r["category"]), unit=r["unit"], price_fen=r["price_fen"],
            stock=r["stock"], supplier_id=r["supplier_id"], supplier_name=r["supplier_name"], status=r["status"],
            description=r["description"], review_note=r["review_note"], created_at=r["created_at"].astimezone(TZ),
            updated_at=r["updated_at"].astimezone(TZ), images=images.get(r["id"], []),
        )
        for r in rows
    ]
    return Response(ProductPage(items=items, total=total))


app = Litestar(route_handlers=[ready, place, products], lifespan=[lifespan], debug=False)
