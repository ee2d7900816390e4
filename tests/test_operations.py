"""Operations: the request id on every log line and in every answer, the logs as JSON."""

from __future__ import annotations

import json
import logging
import os
import re

from shop.logs import JsonFormatter

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_every_answer_carries_a_request_id(client):
    sent = await client.get("/health", headers={"X-Request-ID": "lb-7f3a.2:1"})
    assert sent.headers["x-request-id"] == "lb-7f3a.2:1"
    made = await client.get("/health")
    assert GENERATED.fullmatch(made.headers["x-request-id"])
    assert made.headers["x-request-id"] != (await client.get("/health")).headers["x-request-id"]
    # an id that could fool a log reader or is too long is replaced, not echoed
    for bad in ("two words", "x" * 129, "-starts-with-a-dash", "ünïcode"):
        r = await client.get("/health", headers={"X-Request-ID": bad.encode()})
        assert GENERATED.fullmatch(r.headers["x-request-id"]), bad
    # unknown paths and refusals too (the id wraps the router, not only the handlers)
    assert (await client.get("/no/such/page", headers={"X-Request-ID": "nf-1"})).headers["x-request-id"] == "nf-1"
    refused = await client.get("/api/me", headers={"X-Request-ID": "unauth-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "unauth-1"


async def test_what_a_request_logs_carries_its_id(client, caplog):
    caplog.set_level(logging.INFO)
    r = await client.post("/api/payments/stripe/webhook", content=b"{}", headers={"X-Request-ID": "hook-1"})
    assert r.status_code == 400 and r.json()["code"] == "bad_signature"
    mine = [rec for rec in caplog.records if "STRIPE_WEBHOOK_SECRET is not set" in rec.getMessage()]
    assert len(mine) == 1 and mine[0].request_id == "hook-1"
    line = json.loads(JsonFormatter().format(mine[0]))
    assert line["request_id"] == "hook-1" and line["level"] == "ERROR" and line["logger"] == "shop.payments"
    # outside a request there is no id
    logging.getLogger("shop").warning("between requests")
    assert caplog.records[-1].request_id is None


def test_the_json_formatter_writes_one_object_a_line_with_the_exception():
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("shop").makeRecord("shop", logging.ERROR, __file__, 1, "failed: %s, 订单 %d", ("x", 7), exc_info=True)
        record.exc_info = __import__("sys").exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed: x, 订单 7" and line["level"] == "ERROR" and line["pid"] == os.getpid()
    assert "ValueError: broken" in line["exc"] and line["time"].endswith("+00:00")
