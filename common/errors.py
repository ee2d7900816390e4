"""One refusal type for every package: the shop maps it to an RFC 9457 problem detail."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with an API.md error `code` (`not_found`, `cap_exceeded`, …) and the
    problem's extension fields (`members=[…]`, `products=[…]`)."""

    def __init__(self, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail
        self.extra = extra


def invalid(field: str, message: str) -> DomainError:
    """A `validation_failed` refusal naming the field at fault."""
    return DomainError("validation_failed", f"{field}: {message}", errors=[{"field": field, "message": message}])
