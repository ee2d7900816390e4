"""A 50 MB upload against the real server (`shop serve`): it answers once the body passes the
route's limit, while the client is still sending, and does not read the rest. The client sends
over a plain socket, chunked (nothing announces the size), and watches for the answer between
chunks: what it managed to send by then is the limit plus what the sockets' buffers hold."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from catalog.api import PHOTO_BODY_MAX
from tests import test_photos
from tests.server import running_server
from tests.test_catalog import new_product
from tests.test_photos import MULTIPART_HEAD

world = test_photos.world  # the fixture

pytestmark = pytest.mark.slow_suite

MB = 1024 * 1024
TOTAL = 50 * MB


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def send_until_answered(url: str, path: str, token: str) -> tuple[int, bytes]:
    """Send a 50 MB multipart body until the server answers; (bytes of body sent, answer)."""
    address = urlparse(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=cut\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sock.sendall(head)
    sock.setblocking(False)
    pending = memoryview(_chunked(MULTIPART_HEAD))
    sent, answer = 0, b""
    chunk = _chunked(b"\0" * (256 * 1024))
    deadline = time.monotonic() + 60
    while sent < TOTAL and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 1)
        if readable:
            break  # the answer (or the end of the connection) came while we were still sending
        if writable:
            if not pending:
                pending = memoryview(chunk)
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += n
            pending = pending[n:]
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return sent, answer


async def test_the_real_server_answers_a_50_mb_upload_at_the_limit(world):
    p = await new_product(world.sup_a)
    path = f"/api/supplier/products/{p['id']}/images"
    with running_server(workers=1) as url:
        sent, answer = await asyncio.to_thread(send_until_answered, url, path, world.sup_a.token)
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{url}/ready")).status_code == 200  # and it carries on
    assert sent < TOTAL / 2, f"the client sent {sent} bytes before the server answered"
    assert sent > PHOTO_BODY_MAX  # it read up to the limit
    print(f"sent {sent / MB:.1f} MB of 50 before the answer")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"application/problem+json" in answer
