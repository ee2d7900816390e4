"""The few plain things every package shares: the refusal type, the Shanghai clock and
portable SQL helpers. A leaf: it imports nothing of ours, so `catalog/` and `budgets/`
(which import nothing of `shop/`) may use it."""
