"""The OpenAPI schema tells the truth: every operation lists the problem answers it can give,
whether it needs the bearer token, and that request bodies refuse unknown fields.

Litestar documents the successful answer; `document_problems` runs once at startup over the
generated schema and adds, per operation, what follows from the route:
- every operation: 503 `unavailable` (the database could not be reached);
- not excluded from the token middleware: 401, `security: [BearerToken]`, 403 for a role guard
  or a write (the cookie alone); public operations: `security: []`;
- an id or code in the path: 404; a body or a query: 400 `validation_failed`;
- an id in a query: 404; a body: 413 and 415;
- a state-changing method that needs the token: 409 (the domain's refusals), and 404 when it has
  a body (an object the body names);
- the codes a handler declares in `opt={"problems": (...)}` (the webhook's 400 `bad_signature`);
- 429 on login.
A handler that reads a multipart form itself (an upload, `opt={"multipart": (file fields,)}`, and
its text fields in `opt={"form_fields": {name: schema}}`) has its request body described here,
since Litestar sees no `data` parameter; one that answers files of several kinds lists them in
`opt={"media_types": (...)}`. An operation taking `If-None-Match` documents its 304."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

from shop.errors import CODES
from shop.reports.export import XLSX_TYPE

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem detail; `code` is one of API.md's codes, extension fields follow it.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(CODES)},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
EXPORT_MEDIA_TYPES = {"text/csv": {"schema": {"type": "string"}}, XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}}
SECURITY_SCHEME = "BearerToken"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
LOGIN = ("/api/auth/login", "POST")
METRICS_PATH = "/metrics"
_DESCRIPTIONS = {status: title for status, title in CODES.values()}


def _codes_for(status: int) -> list[str]:
    return sorted(code for code, (code_status, _) in CODES.items() if code_status == status)


def _problem_response(status: int) -> dict[str, Any]:
    description = " or ".join(f"`{code}`" for code in _codes_for(status)) or _DESCRIPTIONS.get(status, "")
    return {
        "description": f"Problem: {description}",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }


def _is_public(app: Litestar, path: str, handler: Any) -> bool:
    """What the token middleware lets through without a token (`shop/auth/tokens.py`)."""
    jwt_auth = app.state.jwt_auth
    return bool(handler.opt.get(jwt_auth.exclude_opt_key)) or any(re.match(pattern, path) for pattern in jwt_auth.exclude)


def _role_guarded(handler: Any) -> bool:
    return any(guard.__name__.startswith("require_") for layer in handler.ownership_layers for guard in layer.guards or [])


def _statuses(path: str, method: str, operation: dict[str, Any], handler: Any, public: bool) -> set[int]:
    statuses = {503}
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if not public:
        statuses.add(401)
        if _role_guarded(handler) or method in WRITES:  # a role, or a write with the cookie alone
            statuses.add(403)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if has_body or any(p.get("in") == "query" for p in parameters):
        statuses.add(400)
    if any(p.get("in") == "query" and p["name"].endswith("_id") for p in parameters):
        statuses.add(404)  # a query naming an object that does not exist
    if has_body and not handler.opt.get("multipart"):  # an upload's too large or unreadable body is a 400
        statuses |= {413, 415}
    if method in WRITES and not public:
        statuses.add(409)  # the domain's refusals
        if has_body:
            statuses.add(404)  # an object the body names does not exist
    if (path, method) == LOGIN:
        statuses |= {401, 429}
    statuses |= set(handler.opt.get("problems", ()))
    return statuses


def _forbid_unknown_fields(schema: dict[str, Any], node: Any, seen: set[str]) -> None:
    """Request bodies are msgspec structs with forbid_unknown_fields: say so, nested ones too."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            component = schema["components"]["schemas"].get(name)
            if name not in seen and component is not None:
                seen.add(name)
                if component.get("type") == "object":
                    component["additionalProperties"] = False
                _forbid_unknown_fields(schema, component, seen)
        for value in node.values():
            _forbid_unknown_fields(schema, value, seen)
    elif isinstance(node, list):
        for value in node:
            _forbid_unknown_fields(schema, value, seen)


def document_problems(app: Litestar, schema: dict[str, Any]) -> None:
    """Add the problem answers, security and unknown-field refusal to the generated `schema`."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ProblemDetails"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <token>` from `POST /api/auth/login`",
    }
    schema.pop("security", None)  # each operation says its own
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path_item = schema.get("paths", {}).get(route.path_format)
        if path_item is None:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            _document_upload(operation, handler)
            public = _is_public(app, route.path_format, handler)
            operation["security"] = [] if public else [{SECURITY_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            litestars = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
            for status in sorted(_statuses(route.path_format, method, operation, handler, public) | litestars):
                responses[str(status)] = _problem_response(status)  # replaces Litestar's own 400
            if any(p.get("in") == "header" and p["name"].lower() == "if-none-match" for p in operation.get("parameters", [])):
                responses["304"] = {"description": "Not Modified: `If-None-Match` names the content as it is"}
            if "requestBody" in operation:
                _forbid_unknown_fields(schema, operation["requestBody"], set())
            _document_media_types(route.path_format, operation, handler)


def _document_upload(operation: dict[str, Any], handler: Any) -> None:
    fields = handler.opt.get("multipart")
    if not fields:
        return
    text = handler.opt.get("form_fields", {})
    schema = {
        "type": "object",
        "required": [*text, *fields],
        "properties": {**text, **{name: {"type": "string", "format": "binary"} for name in fields}},
    }
    operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def _document_media_types(path: str, operation: dict[str, Any], handler: Any) -> None:
    """Exports answer CSV or XLSX with `format=`; a handler of another media type (the metrics) says so."""
    success = next((r for status, r in operation["responses"].items() if status.startswith("2")), None)
    if success is None or "content" not in success:
        return
    if any(p.get("in") == "query" and p["name"] == "format" for p in operation.get("parameters", [])):
        success["content"].update(EXPORT_MEDIA_TYPES)
    media_type = str(getattr(handler.media_type, "value", handler.media_type) or "")
    if path == METRICS_PATH:
        media_type = "text/plain"  # Prometheus' exposition format, set by its handler as it answers
    if media_type and not media_type.startswith("application/json"):
        success["content"] = {media_type.split(";")[0]: {"schema": {"type": "string"}}}
    if handler.opt.get("media_types"):
        success["content"] = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in handler.opt["media_types"]}


def install(app: Litestar) -> None:
    """At startup: build the schema once and complete it (Litestar serves the same dict after)."""
    from litestar._openapi.plugin import OpenAPIPlugin

    document_problems(app, app.plugins.get(OpenAPIPlugin).provide_openapi_schema())
