"""The states the budgets tables keep, each defined once: the tables' CHECK constraints,
the schemas and the domain modules all name them from here."""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    """A union's place in the tree: federation > district > branch (基层工会, the buyer)."""

    federation = "federation"
    district = "district"
    branch = "branch"


class LedgerKind(enum.StrEnum):
    """What a ledger entry did to a member's budget (budgets/ledger.py says how)."""

    hold = "hold"
    capture = "capture"
    release = "release"
    refund = "refund"
