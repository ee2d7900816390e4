"""Request metrics: `shop.metrics.ShopPrometheusMiddleware` reports what Litestar's own
Prometheus middleware reports, under the same names and labels."""

from __future__ import annotations

import httpx
from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shop.metrics import ShopPrometheusMiddleware


@get("/items/{n:int}", sync_to_thread=False)
def item(n: FromPath[int]) -> dict:
    if n == 0:
        raise NotFoundException("no item 0")
    return {"n": n}


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("a bug")


@get("/quiet", sync_to_thread=False, opt={"no_metrics": True})
def quiet() -> str:
    return "-"


def _app(prefix: str, middleware: type[PrometheusMiddleware]) -> Litestar:
    config = PrometheusConfig(
        app_name=prefix, prefix=prefix, group_path=True, exclude_opt_key="no_metrics", middleware_class=middleware
    )
    return Litestar([item, boom, quiet], middleware=[config.middleware], debug=False)


def _samples(prefix: str) -> dict[tuple, float]:
    """The metrics named `prefix_*`, without the prefix: (name, labels) -> value. Durations
    are compared by their count (the seconds themselves differ run to run)."""
    found = {}
    for family in REGISTRY.collect():
        for s in family.samples:
            if not s.name.startswith(prefix + "_") or s.name.endswith(("_sum", "_created", "_bucket")):
                continue
            labels = {**s.labels, "app_name": "app"}
            found[(s.name[len(prefix):], tuple(sorted(labels.items())))] = s.value
    return found


async def _drive(app: Litestar) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as c:
        for path, status in [("/items/1", 200), ("/items/2", 200), ("/items/0", 404), ("/boom", 500),
                             ("/items/x", 404), ("/nowhere", 404), ("/quiet", 200), ("/items/3", 200)]:
            assert (await c.get(path)).status_code == status, path
        assert (await c.post("/items/1")).status_code == 405


async def test_the_same_metrics_as_litestars_own_middleware():
    await _drive(_app("plugin_eq", PrometheusMiddleware))
    await _drive(_app("shop_eq", ShopPrometheusMiddleware))
    plugin, ours = _samples("plugin_eq"), _samples("shop_eq")
    assert ours == plugin
    # and what they say: three answers of the item route, one not found, one server error
    def key(name: str, path: str, status: str) -> tuple:
        return (name, (("app_name", "app"), ("method", "GET"), ("path", path), ("status_code", status)))

    assert ours[key("_requests_total", "/items/{n}", "200")] == 3
    assert ours[key("_requests_total", "/items/{n}", "404")] == 1
    assert ours[key("_request_duration_seconds_count", "/items/{n}", "200")] == 3
    errors = {k: v for k, v in ours.items() if k[0] == "_requests_error_total"}
    assert errors == {key("_requests_error_total", "/boom", "500"): 1}
    assert all(v == 0 for k, v in ours.items() if k[0] == "_requests_in_progress")
    assert not any(dict(k[1])["path"] == "/quiet" for k in ours)


async def test_the_shop_counts_its_requests_by_route(client):
    def count(text: str, path: str) -> float:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "shop_requests_total" and s.labels.get("path") == path and s.labels["status_code"] == "200":
                    return s.value
        return 0

    before = count((await client.get("/metrics")).text, "/api/products")
    for _ in range(3):
        assert (await client.get("/api/products?limit=5")).status_code == 200
    text = (await client.get("/metrics")).text
    assert count(text, "/api/products") == before + 3
    assert count(text, "/metrics") == 0  # the scrape is not counted
