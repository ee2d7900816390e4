"""The field rules the budgets modules check themselves (the seeder calls them too, not
only the API, whose schemas say the same): years, amounts of fen, names."""

from __future__ import annotations

import re

from common.errors import invalid

YEAR_MIN, YEAR_MAX = 2000, 2100

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_year(year: int, field: str = "year") -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not YEAR_MIN <= year <= YEAR_MAX:
        raise invalid(field, f"must be a year from {YEAR_MIN} to {YEAR_MAX}")
    return year


def check_amount(value: int, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise invalid(field, f"must be a whole number of fen from 0 to {maximum}")
    return value


def text_problem(text: str, limit: int) -> str | None:
    """What is wrong with an already stripped name, if anything."""
    if not text:
        return "must not be empty"
    if len(text) > limit:
        return f"must be at most {limit} characters"
    if _CONTROL_RE.search(text):
        return "must not contain control characters"
    return None


def clean_text(value: str, field: str, limit: int) -> str:
    """The name stripped of surrounding spaces, or `validation_failed` naming the field."""
    text = value.strip() if isinstance(value, str) else ""
    if problem := text_problem(text, limit):
        raise invalid(field, problem)
    return text
