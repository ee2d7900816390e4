"""Periodic jobs that run inside every server process (each is safe to run concurrently)."""

from __future__ import annotations

from typing import Awaitable, Callable

from shop.settings import Settings

JOBS: list[Callable[[Settings], Awaitable[None]]] = []
