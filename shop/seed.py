"""Load the demo data in seeds/ (data files, not code). Idempotent: a second run adds nothing."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import budgets.members
import budgets.targets
import budgets.unions
import seeds
from budgets import approval_rules
from catalog import photos
from catalog import service as catalog
from catalog.images import image_count
from catalog.regions import ensure_region
from catalog.suppliers import ensure_supplier
from common.files import FileStore
from shop import seed_pictures
from shop.auth import accounts
from shop.auth.tables import User
from shop.settings import get_settings

# the `seeds` package: the source tree's seeds/ folder, or the copy an installed wheel carries
SEEDS_DIR = Path(os.environ.get("SEEDS_DIR") or Path(seeds.__file__).resolve().parent)


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((SEEDS_DIR / name).read_text(encoding="utf-8"))


async def seed() -> dict[str, int]:
    """Regions, unions, suppliers, products, members and targets."""
    counts: dict[str, int] = {}
    unions: dict[str, int] = {}
    for u in _load("unions.json"):
        unions[u["code"]] = await budgets.unions.ensure_union(u["code"], u["name"], u["level"], u["parent_code"])
    counts["unions"] = len(unions)
    regions = _load("regions.json")
    for r in regions:
        await ensure_region(r["code"], r["name"], r["province"], r["paired_with"])
    counts["regions"] = len(regions)
    suppliers: dict[str, int] = {}
    for s in _load("suppliers.json"):
        suppliers[s["name"]] = await ensure_supplier(s["name"], s["regions"])
    counts["suppliers"] = len(suppliers)
    products = _load("products.json")
    product_ids: dict[str, tuple[int, int]] = {}
    for p in products:
        product_ids[p["title"]] = suppliers[p["supplier"]], await catalog.ensure_product(
            suppliers[p["supplier"]],
            p["title"],
            p["region"],
            p["category"],
            p["unit"],
            p["price_fen"],
            p["stock"],
            p["description"],
            p["status"],
        )
    counts["products"] = len(products)
    counts["pictures"] = await _pictures(product_ids)
    members = _load("members.json")
    for m in members:
        await budgets.members.ensure_member(unions[m["union_code"]], m["member_no"], m["name"])
    counts["members"] = len(members)
    targets = _load("targets.json")
    for t in targets:
        await budgets.targets.ensure_target(t["union_code"], t["year"], t["target_fen"])
    counts["targets"] = len(targets)
    return counts


async def _pictures(product_ids: dict[str, tuple[int, int]]) -> int:
    """Drawn pictures for the products `pictures.json` names, to those that have no photo yet."""
    pictures = _load("pictures.json")
    store = FileStore(get_settings().data_dir)
    for picture in pictures:
        supplier_id, product_id = product_ids[picture["title"]]
        if await image_count(product_id):
            continue
        png = seed_pictures.draw(picture["title"], picture["shape"], picture["colour"], picture["accent"])
        await photos.add_photo(store, supplier_id, product_id, _once(png), actor_id=None, review=False)
    return len(pictures)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def demo_users() -> list[dict[str, str]]:
    """The demo accounts of every role (created once; their passwords are in seeds/)."""
    made = []
    for u in _load("demo_users.json"):
        union_id = supplier_id = None
        if u.get("union_code"):
            found = await budgets.unions.union_by_code(u["union_code"])
            union_id = found["id"] if found else None
        if u.get("supplier"):
            supplier_id = await ensure_supplier(u["supplier"], [])
        if not await User.exists().where(User.username == u["username"]):
            await accounts.create_user(u["username"], u["password"], u["role"], union_id=union_id, supplier_id=supplier_id)
            if u.get("approval_above_fen") is not None and union_id is not None:  # the approver's branch gets a rule
                await approval_rules.set_rule(union_id, u["approval_above_fen"], actor_id=None, at=datetime.now(timezone.utc))
        made.append({"username": u["username"], "password": u["password"], "role": u["role"], "scope": u.get("union_code") or u.get("supplier") or "全部"})
    return made
