"""A small stand-in for the Stripe HTTP API, for the few endpoints the shop uses.

A real HTTP server on 127.0.0.1 (a thread), spoken to by the real `stripe` library:
form-encoded requests in, JSON out, Bearer authentication, idempotency keys replayed as
Stripe does. It records every request so that tests can check what the shop sent, keeps
sessions, payment intents and refunds, builds the webhook events Stripe would send, and
signs them exactly as Stripe does. It can be told to fail (HTTP 5xx) or to refuse refunds.
(Stripe's own stripe-mock is stateless and cannot run here.)"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_stub_0123456789"
WEBHOOK_SECRET = "whsec_test_stub_secret"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]  # flat, as sent: "line_items[0][price_data][unit_amount]" -> "10000"
    replayed: bool = False

    @property
    def params(self) -> dict[str, Any]:
        return nest(self.form)


def nest(form: dict[str, str]) -> dict[str, Any]:
    """Stripe's bracket encoding back into dicts and lists: a[b][0][c]=x -> {"a": {"b": [{"c": "x"}]}}."""
    root: dict[str, Any] = {}
    for key, value in form.items():
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: listify(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return listify(root)


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass
class StripeStub:
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    fail_with: int | None = None  # answer every request with this HTTP status (not remembered for its key)
    refuse_refunds: bool = False  # answer refunds 400, as Stripe does for a refusal
    _replies: dict[str, tuple[str, int, dict]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> StripeStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                stub._serve(self)

            do_GET = do_POST

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.sessions.clear()
            self.payment_intents.clear()
            self.refunds.clear()
            self._replies.clear()
            self.fail_with = None
            self.refuse_refunds = False

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # --- the HTTP side ------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        path = urlsplit(handler.path).path
        form = dict(parse_qsl(body, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = Recorded(handler.command, path, headers, form)
        with self._lock:
            self.requests.append(record)
            status, reply, extra = self._answer(record)
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_stub_{len(self.requests)}")
        for k, v in extra.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, r: Recorded) -> tuple[int, dict, dict]:
        if r.headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", "Invalid API Key provided"), {}
        if self.fail_with:
            # An outage in front of the API: not remembered under the idempotency key.
            return self.fail_with, _error("api_error", "the stub is down"), {"Stripe-Should-Retry": "false"}
        key = r.headers.get("idempotency-key")
        fingerprint = json.dumps([r.method, r.path, sorted(r.form.items())])
        if key and key in self._replies:
            seen, status, reply = self._replies[key]
            if seen != fingerprint:
                return 400, _error("idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with."), {}
            r.replayed = True
            return status, reply, {"Idempotent-Replayed": "true"}
        if r.method == "POST" and r.path == "/v1/checkout/sessions":
            status, reply = self._create_session(r.params)
        elif r.method == "POST" and r.path == "/v1/refunds":
            status, reply = self._create_refund(r.params)
        elif r.method == "POST" and r.path.startswith("/v1/checkout/sessions/") and r.path.endswith("/expire"):
            status, reply = self._expire_session(r.path.split("/")[-2])
        else:
            status, reply = 404, _error("invalid_request_error", f"Unrecognized request URL ({r.method}: {r.path})")
        if key and r.method == "POST":
            self._replies[key] = (fingerprint, status, reply)
        return status, reply, {}

    def _create_session(self, p: dict) -> tuple[int, dict]:
        expires_at = int(p.get("expires_at", 0))
        now = int(time.time())
        if not now + 30 * 60 <= expires_at <= now + 24 * 3600:
            return 400, _error("invalid_request_error", "expires_at must be 30 minutes to 24 hours from now", param="expires_at")
        items = p.get("line_items") or []
        if not items or p.get("mode") != "payment":
            return 400, _error("invalid_request_error", "line_items and mode=payment are required")
        total = sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items)
        n = next(self._ids)
        session = {
            "id": f"cs_test_stub{n:06d}",
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "amount_total": total,
            "currency": p.get("currency") or items[0]["price_data"]["currency"],
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata") or {},
            "expires_at": expires_at,
            "success_url": p.get("success_url"),
            "cancel_url": p.get("cancel_url"),
            "url": f"{self.url}/c/pay/cs_test_stub{n:06d}",
            "livemode": False,
        }
        self.sessions[session["id"]] = session
        return 200, session

    def _expire_session(self, session_id: str) -> tuple[int, dict]:
        """As Stripe: only an open session can be expired; after it, it can no longer be paid."""
        session = self.sessions.get(session_id)
        if session is None:
            return 404, _error("invalid_request_error", f"No such checkout.session: '{session_id}'", code="resource_missing")
        if session["status"] != "open":
            return 400, _error("invalid_request_error", f"Only Checkout Sessions with a status of open can be expired; this one is {session['status']}.")
        session["status"] = "expired"
        return 200, dict(session)

    def _create_refund(self, p: dict) -> tuple[int, dict]:
        if self.refuse_refunds:
            return 400, _error("invalid_request_error", "The refund was refused by the stub.", code="charge_disputed")
        pi = self.payment_intents.get(p.get("payment_intent", ""))
        if pi is None:
            return 400, _error("invalid_request_error", f"No such payment_intent: '{p.get('payment_intent')}'", code="resource_missing", param="payment_intent")
        amount = int(p.get("amount", pi["amount"] - pi["refunded"]))
        if amount <= 0 or pi["refunded"] + amount > pi["amount"]:
            return 400, _error("invalid_request_error", "Refund amount is greater than the unrefunded amount.", code="amount_too_large", param="amount")
        pi["refunded"] += amount
        n = next(self._ids)
        refund = {
            "id": f"re_stub{n:06d}",
            "object": "refund",
            "amount": amount,
            "currency": pi["currency"],
            "payment_intent": pi["id"],
            "status": "succeeded",
            "metadata": p.get("metadata") or {},
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    # --- the webhook side ---------------------------------------------------------

    def event(self, type_: str, session_id: str, payment_status: str | None = None, event_id: str | None = None) -> dict:
        """The event Stripe would send about a session; a payment makes its PaymentIntent."""
        with self._lock:
            session = self.sessions[session_id]
            if type_ in ("checkout.session.completed", "checkout.session.async_payment_succeeded") and session["payment_intent"] is None:
                pi_id = f"pi_stub{next(self._ids):06d}"
                self.payment_intents[pi_id] = {"id": pi_id, "amount": session["amount_total"], "currency": session["currency"], "refunded": 0}
                session["payment_intent"] = pi_id
            if type_ == "checkout.session.completed":
                session["status"] = "complete"
                session["payment_status"] = payment_status or "paid"
            elif type_ == "checkout.session.async_payment_succeeded":
                session["payment_status"] = "paid"
            elif type_ == "checkout.session.expired":
                session["status"] = "expired"
            return {
                "id": event_id or f"evt_stub{next(self._ids):06d}",
                "object": "event",
                "api_version": "2025-09-30.clover",
                "created": int(time.time()),
                "livemode": False,
                "pending_webhooks": 1,
                "type": type_,
                "data": {"object": dict(session)},
            }


def _error(type_: str, message: str, code: str | None = None, param: str | None = None) -> dict:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}
