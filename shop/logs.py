"""Logs: one configuration for the server's workers, its supervisor and the CLI, as text or
as one JSON object a line (`LOG_FORMAT=json`), and a request id on every line written
while a request is handled: the client's `X-Request-ID` when it is sane, else one made
here, answered in the response's `X-Request-ID` header."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.logging import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
# what a client may choose: short, and nothing a log reader or a header could be fooled by
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
FORMATS = ("text", "json")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


_issued: dict[str, Any] = {"pid": 0, "prefix": "", "count": itertools.count(1)}


def new_request_id() -> str:
    """32 hex digits: random for the process (8 bytes), then counted; unique like a uuid4 for
    the logs' purposes, at a fraction of its cost on every request."""
    pid = os.getpid()
    if _issued["pid"] != pid:  # a new process (a worker): its own random part
        _issued.update(pid=pid, prefix=os.urandom(8).hex(), count=itertools.count(1))
    return f"{_issued['prefix']}{next(_issued['count']):016x}"


_HEADER = REQUEST_ID_HEADER.encode()


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == _HEADER:
            sent = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(sent):
                return sent
            break
    return new_request_id()


class RequestIdMiddleware:
    """Wraps the whole application (unknown paths and refusals included): the request id is
    set for everything the request's task logs, uvicorn's access line among them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope["headers"])
        token = request_id.set(rid)
        ours = (_HEADER, rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                headers.append(ours)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record is stamped when it is made, in the thread and task that log it."""
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    return record


def install_record_factory() -> None:
    if logging.getLogRecordFactory() is not _record_with_request_id:
        logging.setLogRecordFactory(_record_with_request_id)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, process id and
    the exception, if any."""

    def __init__(self) -> None:
        super().__init__()
        install_record_factory()  # however the formatter was configured (uvicorn's workers too)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        install_record_factory()

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.request_id = rid or "-"  # for this line only: other handlers see the record as it was
        try:
            return super().format(record)
        finally:
            record.request_id = rid


def logging_dict(log_format: str, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process: one stream handler on stderr, the
    root at `level`, uvicorn's loggers through the root (their lines formatted the same)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"shop": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "shop", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "litestar": {"handlers": [], "propagate": True},
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
    }


def configure(log_format: str, level: str) -> None:
    """The CLI's and uvicorn's supervisor's logging (the workers get the same from the app)."""
    import logging.config

    logging.config.dictConfig(logging_dict(log_format, level))


def litestar_logging(log_format: str, level: str) -> LoggingConfig:
    """The same configuration, as Litestar applies it when the app is made."""
    d = logging_dict(log_format, level)
    console = d["handlers"]["console"]
    return LoggingConfig(
        formatters=d["formatters"],
        # Litestar insists on a `queue_listener` handler; this one is the plain stream handler
        # too (a line is written as it is logged, as uvicorn's own handlers do)
        handlers={"console": console, "queue_listener": dict(console)},
        loggers=d["loggers"],
        root=d["root"],
        log_exceptions="never",  # the 500 handler logs with the stack trace
    )
