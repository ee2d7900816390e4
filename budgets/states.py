"""The states the budgets tables keep, each defined once: the tables' CHECK constraints,
the schemas and the domain modules all name them from here."""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    """A union's place in the tree: federation > district > branch (基层工会, the buyer)."""

    FEDERATION = "federation"
    DISTRICT = "district"
    BRANCH = "branch"


class LedgerKind(enum.StrEnum):
    """What a ledger entry did to a member's budget (budgets/ledger.py says how)."""

    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
