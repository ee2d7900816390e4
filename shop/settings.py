"""Settings, read once from the environment into a typed structure."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "sqlite:///shop.db"
    data_dir: str = "data"
    secret_key: str = ""
    token_ttl_hours: int = 12
    login_rate_limit: int = 10  # attempts a minute per client address and username
    member_view_rate_limit: int = 60  # members' link pages and API: requests a minute per client address
    # where the counters every server process shares live (login limits, revoked tokens):
    # Redis when set (redis://host:port/db), else the database
    redis_url: str = ""
    hold_minutes: int = 60  # how long an unpaid Stripe order holds quota
    transfer_hold_days: int = 30  # how long an unpaid bank-transfer order holds quota
    approval_hours: int = 72  # an order waiting for its approver this long expires (APPROVAL_HOURS)
    expiry_interval_seconds: int = 60  # how often the server expires stale holds
    auto_receive_days: int = 10  # a shipment still `shipped` this long after it was sent is received
    pg_pool_min: int = 1
    pg_pool_max: int = 10
    public_url: str = "http://127.0.0.1:8000"
    stripe_api_key: str = ""
    stripe_api_base: str = ""
    stripe_webhook_secret: str = ""
    bank_name: str = "中国工商银行广州分行营业部"
    bank_account_name: str = "消费帮扶商城运营有限公司"
    bank_account_no: str = "3602000000000000000"
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object a line (shop/logs.py)
    # on SIGTERM a server stops taking connections and gives requests in flight this long to finish
    graceful_shutdown_seconds: int = 30

    @property
    def payment_provider(self) -> str:
        return "stripe" if self.stripe_api_key else "transfer"


_INT_FIELDS = {
    name
    for name, typ in zip(Settings.__struct_fields__, msgspec.structs.fields(Settings))
    if typ.type is int
}


def _secret_from_data_dir(data_dir: str) -> str:
    """The token secret kept in the data directory, made once (safely across workers)."""
    path = Path(data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        raw = env.get(name.upper())
        if raw is None or raw == "":
            continue
        values[name] = int(raw) if name in _INT_FIELDS else raw
    settings = msgspec.convert(values, Settings)
    if not settings.secret_key:
        settings = msgspec.structs.replace(
            settings, secret_key=_secret_from_data_dir(settings.data_dir)
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
