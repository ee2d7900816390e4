"""Accounts, login tokens, guards and the one scope module (who may see which union or order)."""
