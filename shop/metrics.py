"""Request metrics at `/metrics`: Litestar's Prometheus plugin, with its middleware's work per
request cut to what the metrics need.

The plugin's `PrometheusMiddleware` builds a `Request` and its URL, a label dict and a
`functools.wraps` closure on every request, and looks up the labelled child of each metric
anew (four `labels()` calls): 8.6% of the instructions of a product listing
(`tests/perf/floor/instructions.py`). `ShopPrometheusMiddleware` records the same metrics under
the same names and labels (method, path template, status code, app name; `group_path=True`)
with the same values, keeping each labelled child once it is made (`prometheus_client` answers
the same child for the same values, so this changes nothing it reports)."""

from __future__ import annotations

import time
from typing import Any

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class ShopPrometheusMiddleware(PrometheusMiddleware):
    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        # what this subclass leaves to the plugin's own middleware
        self._plain = config.group_path and not (config.labels or config.exemplars or config.excluded_http_methods)
        # each labelled child once it is made, by metric and label values; made when first
        # used, as the plugin makes them (a child reports 0 from when it is made)
        self._children: dict[tuple[str, str, str, int], Any] = {}

    def _child(self, metric: str, method: str, path: str, status: int) -> Any:
        key = (metric, method, path, status)
        child = self._children.get(key)
        if child is None:
            labels: dict[str, str | int | float] = {
                "method": method, "path": path, "status_code": status, "app_name": self._config.app_name
            }
            child = getattr(self, metric)(labels).labels(*labels.values())
            self._children[key] = child
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._plain:
            await super().__call__(scope, receive, send)
            return
        method = scope["method"] if scope["type"] == "http" else scope["type"]
        path = scope["path_template"]
        start = time.perf_counter()
        span = [200, 0.0]  # status code, duration (to the last body message sent)

        async def wrapped_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                span[0] = message["status"]
            elif kind == "http.response.body":
                span[1] = time.perf_counter() - start
            await send(message)

        in_progress = self._child("requests_in_progress", method, path, 200)
        in_progress.inc()
        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            in_progress.dec()
            status, duration = span
            if status >= HTTP_500_INTERNAL_SERVER_ERROR:
                self._child("requests_error_count", method, path, status).inc()
            self._child("request_count", method, path, status).inc()
            self._child("request_time", method, path, status).observe(duration)
