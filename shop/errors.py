"""Every error the shop answers is an RFC 9457 problem detail with an API.md `code`."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from common.errors import DomainError, invalid  # noqa: F401  (re-exported for the shop's modules)
from shop.db import database_unreachable

logger = logging.getLogger("shop")

# code -> (status, title)
CODES: dict[str, tuple[int, str]] = {
    "validation_failed": (400, "The request does not match the schema"),
    "bad_signature": (400, "The webhook signature does not verify"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "cap_exceeded": (409, "The order would take a member over the yearly cap"),
    "out_of_stock": (409, "Not enough stock"),
    "not_listed": (409, "The product is not listed"),
    "invalid_state": (409, "The action does not fit the object's state"),
    "idempotency_conflict": (409, "The Idempotency-Key was used with another body"),
    "conflict": (409, "Conflicts with existing data"),
    "payload_too_large": (413, "The request body is too large"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "rate_limited": (429, "Too many attempts"),
    "internal_error": (500, "Internal server error"),
    "payment_unavailable": (503, "The payment provider could not be reached"),
    "unavailable": (503, "Service unavailable"),
}

_STATUS_CODES = {
    400: "validation_failed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


ShopError = DomainError  # the shop's modules raise the one refusal type every package shares


def problem(code: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any) -> ProblemDetailsException:
    status, title = CODES.get(code, (500, code))
    clash = _RESERVED & extra.keys()
    if clash:
        raise ValueError(f"problem extension fields may not reuse {sorted(clash)}")
    return ProblemDetailsException(
        status_code=status,
        title=title,
        detail=detail or title,
        type_=f"/problems/{code}",
        headers=headers,
        extra={"code": code, **extra},
    )


_RESERVED = {"type", "title", "status", "detail", "instance", "code"}
_AT = re.compile(r"\s*-\s*at\s*`\$\.?(?P<path>[^`]*)`\s*$")
_NAMED = re.compile(r"(?:unknown|required) field `(?P<name>[^`]*)`")


def _field_errors(exc: HTTPException) -> list[dict[str, str]]:
    """Litestar's validation extras -> [{field, message}]; msgspec names the path as `$.a.b`."""
    errors = []
    items = exc.extra if isinstance(exc.extra, list) else []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        key = str(item.get("key") or "")
        path = ""
        if match := _AT.search(message):
            path, message = match["path"], message[: match.start()]
        if named := _NAMED.search(message):  # a missing or unknown field names itself
            path = ".".join(filter(None, [path, named["name"]]))
        # the body's own path wins over Litestar's name for it ("data"); query params keep their key
        field = path if key in ("", "data", "body") else key
        errors.append({"field": str(field or item.get("source") or "body"), "message": message})
    if not errors:
        errors.append({"field": "body", "message": str(exc.detail)})
    return errors


def _from_validation(exc: HTTPException) -> ProblemDetailsException:
    errors = _field_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem("validation_failed", detail, errors=errors)


def _from_http(exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ProblemDetailsException):
        return exc
    code = _STATUS_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "conflict")
    if isinstance(exc, NotAuthorizedException):
        code = "unauthenticated"
    elif isinstance(exc, PermissionDeniedException):
        code = "forbidden"
    elif isinstance(exc, NotFoundException):
        code = "not_found"
    elif isinstance(exc, TooManyRequestsException):
        code = "rate_limited"
    detail = exc.detail if exc.status_code < 500 else ""
    return problem(code, detail, headers=exc.headers)


def _from_domain(exc: DomainError) -> ProblemDetailsException:
    return problem(exc.code, exc.detail, **exc.extra)


def _redis_unreachable(exc: Exception) -> bool:
    """Redis (`REDIS_URL`: login limits, revoked tokens) did not answer."""
    try:
        from redis.exceptions import ConnectionError, TimeoutError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (ConnectionError, TimeoutError))


def _unexpected(request: Request, exc: Exception) -> Response:
    if database_unreachable(exc) or _redis_unreachable(exc):
        # the pool opens new connections for the next requests. A transaction that died with
        # its connection changed nothing; one whose COMMIT was in flight may have committed,
        # which is why every money-moving request is idempotent on its key: repeat it.
        logger.warning("database or redis unreachable on %s %s: %r", request.method, request.url.path, exc)
        return problem(
            "unavailable",
            "the database (or the shared store) could not be reached; repeat the request shortly (with the same Idempotency-Key it is safe)",
            headers={"Retry-After": "5"},
        ).to_response(request)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem("internal_error", "An unexpected error occurred; it has been logged.").to_response(request)


def path_id_out_of_range(exc: ValidationException) -> bool:
    """An id in the path (`…_id`) out of its range names nothing: 404, like an id that does not
    exist. Other path values (a year) out of range stay 400."""
    items = exc.extra if isinstance(exc.extra, list) else []
    return bool(items) and all(
        isinstance(item, dict) and item.get("source") == "path" and str(item.get("key", "")).endswith("_id") for item in items
    )


def _http_handler(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500 and not isinstance(exc, ProblemDetailsException):
        logger.error("server error on %s %s: %r", request.method, request.url.path, exc)
    if isinstance(exc, ValidationException) and path_id_out_of_range(exc):
        converted = problem("not_found", "no such object: an id in the path is outside 1..2**31-1")
    elif isinstance(exc, ValidationException) or (exc.status_code == 400 and not isinstance(exc, ProblemDetailsException)):
        converted = _from_validation(exc)
    else:
        converted = _from_http(exc)
    return converted.to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                DomainError: _from_domain,
            }
        )
    )


exception_handlers = {HTTPException: _http_handler, Exception: _unexpected}
