"""The union tree, members, the yearly cap, member budgets, the ledger, targets and audit."""
