"""Paired regions, suppliers and their certified regions, products, stock and listing review."""
