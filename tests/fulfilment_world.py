"""Orders after payment, for the fulfilment tests: a paid order holding lines of two
suppliers (so two shipments), and short ways to read its shipments and notifications."""

from __future__ import annotations

from tests.test_payments import place


async def paid_order(world, key: str = "f-1", tea: int = 2, lychee: int = 1, members=None) -> dict:
    """Tea (world.supplier) and lychee (world.other_supplier), paid by a confirmed transfer."""
    lines = [{"product_id": world.products["tea"], "quantity": tea}] if tea else []
    if lychee:
        lines.append({"product_id": world.products["lychee"], "quantity": lychee})
    r = await place(world.buyer, {"lines": lines, "members": members or world.members[:3]}, key)
    assert r.status_code == 201, r.text
    order = r.json()
    r = await world.admin.post(f"/api/admin/orders/{order['id']}/confirm-transfer", json={"reference": order["payment"]["reference"]})
    assert r.status_code == 200 and r.json()["status"] == "paid", r.text
    return r.json()


def shipment_of(order: dict, supplier_id: int) -> dict:
    [shipment] = [s for s in order["shipments"] if s["supplier_id"] == supplier_id]
    return shipment


async def order_of(api, order_id: int) -> dict:
    r = await api.get(f"/api/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def inbox(api, **params) -> dict:
    r = await api.get("/api/notifications", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def actions(api, order_id: int) -> list[str]:
    r = await api.get(f"/api/orders/{order_id}/events")
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()]
