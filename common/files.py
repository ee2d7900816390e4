"""Files that users upload, kept by content: untrusted until recognised.

An upload is read in chunks into a temporary file under `DATA_DIR/files/tmp/`, hashed as it
comes, and refused the moment it passes its byte cap (the partial file is deleted); its kind is
recognised from its first bytes (`sniff_file`), never from the name or content type the client
sent. What is kept is stored by the sha256 of its content at `DATA_DIR/files/ab/cdef…` (written
to a temporary file, then renamed into place), with a `StoredFile` row (`common.tables`): the
same content is stored once. A client's file name is never used.

    store = FileStore(settings.data_dir)
    async with store.receive(upload, max_bytes=5 * MB) as received:   # an UploadFile, or chunks
        if received.content_type not in {PDF, OFD}: raise invalid("file", "…")
        async with store.transaction() as files:                      # the database transaction
            ref = await files.put_received(received)                   # or files.put_bytes(data, WEBP)
            await Invoice.insert(Invoice(file=ref.id, …))

A failure inside `transaction()` removes the files it wrote, before the rollback releases their
rows' keys; a file that was already there (another row's) is never removed. Serve a stored file
with `file_response`: a strong ETag (its hash), 304 on a matching `If-None-Match`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import uuid
import zipfile
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from litestar import Request, Response
from litestar.datastructures import ETag, FormMultiDict, UploadFile
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import File

from common.clock import utcnow
from common.errors import invalid
from common.tables import StoredFile

logger = logging.getLogger("shop.files")

MB = 1024 * 1024
CHUNK = 64 * 1024
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

# The kinds the shop recognises, by content type, and the extension each is served under.
JPEG, PNG, WEBP, PDF, OFD = "image/jpeg", "image/png", "image/webp", "application/pdf", "application/ofd"
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf", OFD: "ofd"}
IMAGES = frozenset({JPEG, PNG, WEBP})


def sniff(head: bytes) -> str | None:
    """The kind of a file from its first bytes (at least 12), or None. An OFD is a ZIP file and
    needs the whole file to be told from other ZIPs: `sniff_file`."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def sniff_file(path: Path) -> str | None:
    """The kind of the file at `path` from its content: magic bytes, and for a ZIP file whether it
    is an OFD (GB/T 33190: `OFD.xml` at the root of the container). Only the ZIP's directory is
    read, nothing is decompressed."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    kind = sniff(head)
    if kind is None and head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as container:
                if "OFD.xml" in container.namelist():
                    return OFD
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return None
    return kind


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


async def _chunks(source: Readable | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if hasattr(source, "read"):
        while chunk := await source.read(CHUNK):  # type: ignore[union-attr]
            yield chunk
    else:
        async for chunk in source:  # type: ignore[union-attr]
            if chunk:
                yield chunk


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit % MB == 0 else f"{limit} bytes"


@dataclass(frozen=True, slots=True)
class Received:
    """An upload on disk (a temporary file, removed when `FileStore.receive` ends)."""

    path: Path
    size: int
    sha256: str
    content_type: str | None  # recognised from the content (`sniff_file`); None: not a kind we know


@dataclass(frozen=True, slots=True)
class StoredRef:
    """A stored file: its `StoredFile` row."""

    id: int
    sha256: str
    size: int
    content_type: str

    @property
    def name(self) -> str:
        return file_name(self.sha256, self.content_type)


def file_name(sha256: str, content_type: str) -> str:
    """`<sha256>.<ext>`: how a stored file is named in a URL (never a name a client chose)."""
    return f"{sha256}.{EXTENSIONS.get(content_type, 'bin')}"


class FileStore:
    """The files under `data_dir/files/`: `ab/cdef…` by content hash, `tmp/` for what is on its way."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir) / "files"
        self.tmp = self.root / "tmp"

    def path_of(self, sha256: str) -> Path:
        if not SHA256_HEX.match(sha256):
            raise ValueError("not a sha256 in hex")
        return self.root / sha256[:2] / sha256[2:]

    def _temp_path(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}.part"

    @asynccontextmanager
    async def receive(
        self, source: Readable | AsyncIterable[bytes], *, max_bytes: int, field: str = "file"
    ) -> AsyncIterator[Received]:
        """Read `source` (an `UploadFile` or any async chunks) into a temporary file, hashing it;
        past `max_bytes` it stops reading and refuses (`validation_failed` on `field`). The
        temporary file is gone when the block ends, whatever happened."""
        path = self._temp_path()
        digest, size = hashlib.sha256(), 0
        out = await asyncio.to_thread(open, path, "xb")
        try:
            try:
                async for chunk in _chunks(source):
                    size += len(chunk)
                    if size > max_bytes:
                        raise invalid(field, f"the file is larger than {_size(max_bytes)}")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            finally:
                out.close()
            if size == 0:
                raise invalid(field, "the file is empty")
            kind = await asyncio.to_thread(sniff_file, path)
            yield Received(path=path, size=size, sha256=digest.hexdigest(), content_type=kind)
        finally:
            path.unlink(missing_ok=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Stash]:
        """A database transaction in which files are stored (`Stash.put_bytes`, `put_received`).
        If the block fails, the files it wrote are removed before the rollback; if the commit
        fails, those that no committed row names. Use it as the outermost transaction."""
        stash = Stash(self)
        try:
            async with StoredFile._meta.db.transaction():
                try:
                    yield stash
                except BaseException:
                    stash.discard()
                    raise
        except BaseException:
            await stash.discard_unclaimed()
            raise

    def open_path(self, ref: StoredRef) -> Path | None:
        path = self.path_of(ref.sha256)
        return path if path.is_file() else None


class Stash:
    """The files one transaction stored (`FileStore.transaction`)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.written: list[tuple[str, Path]] = []  # (sha256, path) of files this transaction wrote

    async def put_bytes(self, data: bytes, content_type: str) -> StoredRef:
        """Store `data` (of a kind the caller made or checked) under its hash."""
        sha256 = hashlib.sha256(data).hexdigest()
        return await self._put(sha256, len(data), content_type, lambda path: self._write(path, data))

    async def put_received(self, received: Received, content_type: str | None = None) -> StoredRef:
        """Store an upload as it is (moved into place, not copied), as the kind recognised in it."""
        kind = content_type or received.content_type
        if kind is None:
            raise invalid("file", "the file is of no kind the shop accepts")
        return await self._put(received.sha256, received.size, kind, lambda path: self._move(received.path, path))

    async def _put(self, sha256: str, size: int, content_type: str, write: Any) -> StoredRef:
        inserted = await (
            StoredFile.insert(StoredFile(sha256=sha256, size=size, content_type=content_type, created_at=utcnow()))
            .on_conflict(target=StoredFile.sha256, action="DO NOTHING")
            .returning(StoredFile.id)
        )
        path = self.store.path_of(sha256)
        if inserted:  # ours until the commit: a concurrent insert of the same hash waits for us
            file_id = inserted[0]["id"]
            if not path.is_file():
                await asyncio.to_thread(write, path)
                self.written.append((sha256, path))
        else:
            row = await StoredFile.select(StoredFile.id, StoredFile.content_type).where(StoredFile.sha256 == sha256).first()
            if row is None:  # pragma: no cover - a row is never deleted
                raise RuntimeError(f"stored file {sha256} vanished")
            file_id, content_type = row["id"], row["content_type"]
            if not path.is_file():  # its file went missing: the same content puts it back (kept)
                logger.warning("stored file %s was missing on disk; written again", sha256)
                await asyncio.to_thread(write, path)
        return StoredRef(id=file_id, sha256=sha256, size=size, content_type=content_type)

    def _write(self, path: Path, data: bytes) -> None:
        temp = self.store._temp_path()
        try:
            with open(temp, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._move(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _move(source: Path, path: Path) -> None:
        with open(source, "rb") as fh:
            os.fsync(fh.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, path)  # atomic: a reader sees the whole file or none

    def discard(self) -> None:
        """The transaction failed: remove what it wrote (it still holds those rows' keys)."""
        for _, path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()

    async def discard_unclaimed(self) -> None:
        """The commit failed: remove what this transaction wrote unless a committed row names it
        now. If the database cannot be asked, the files stay (unnamed, never served)."""
        for sha256, path in self.written:
            try:
                claimed = await StoredFile.exists().where(StoredFile.sha256 == sha256)
            except Exception:  # noqa: BLE001  (whatever failed the commit may fail this too)
                logger.warning("could not tell whether stored file %s is named; kept", sha256)
                continue
            if not claimed:
                path.unlink(missing_ok=True)
        self.written.clear()


@asynccontextmanager
async def multipart_form(request: Request[Any, Any, Any], *, max_bytes: int, field: str = "file") -> AsyncIterator[FormMultiDict]:
    """The request's form, read by Litestar as it streams in: a file part goes to a temporary file,
    and the route's `request_max_body_size` (`body_limit(max_bytes)`) stops the reading the moment
    the body passes it (a 50 MB body is not read whole). Over it, or not a readable multipart body:
    `validation_failed` on `field`. The form's files are closed (their temporary files gone) when
    the block ends. `FileStore.receive` then holds the file itself to `max_bytes`."""
    try:
        form = await request.form()
    except RequestEntityTooLarge:
        raise invalid(field, f"the file is larger than {_size(max_bytes)}") from None
    except ClientException as exc:
        raise invalid(field, f"the body is not readable multipart/form-data: {exc.detail}") from None
    try:
        yield form
    finally:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                await value.close()


FORM_OVERHEAD = 64 * 1024  # a multipart body's framing and other fields beside its file


def body_limit(max_bytes: int) -> int:
    """The `request_max_body_size` of a route taking a file of at most `max_bytes`."""
    return max_bytes + FORM_OVERHEAD


def upload_in(form: FormMultiDict, field: str = "file") -> UploadFile:
    """The file sent as `field` of a multipart form."""
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise invalid(field, f"send the file as the multipart/form-data field {field!r}")
    return upload


async def stored_file(sha256: str) -> StoredRef | None:
    """The stored file with this hash, if there is one."""
    if not SHA256_HEX.match(sha256):
        return None
    row = await StoredFile.select(StoredFile.id, StoredFile.size, StoredFile.content_type).where(StoredFile.sha256 == sha256).first()
    return StoredRef(id=row["id"], sha256=sha256, size=row["size"], content_type=row["content_type"]) if row else None


def etag_matches(if_none_match: str | None, sha256: str) -> bool:
    """Does `If-None-Match` name this content (`*`, or a list of tags; weak comparison, RFC 9110)?"""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag.removeprefix("W/").strip('"') == sha256 for tag in tags)


IMMUTABLE = "public, max-age=31536000, immutable"  # a content-addressed URL never changes what it answers
PRIVATE = "private, no-cache"  # the browser may keep it but asks again (a 304 when unchanged)


def file_response(
    store: FileStore,
    ref: StoredRef,
    *,
    if_none_match: str | None,
    cache_control: str,
    attachment_name: str | None = None,
) -> Response[Any]:
    """Answer a stored file: its recognised content type, a strong ETag (the quoted hash), the
    given `Cache-Control`, `X-Content-Type-Options: nosniff`; 304 when `If-None-Match` matches.
    `attachment_name`: sent as `Content-Disposition: attachment` with that name, else inline."""
    headers = {"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    etag = ETag(value=ref.sha256)
    if etag_matches(if_none_match, ref.sha256):
        return Response(content=b"", status_code=304, headers={**headers, "ETag": etag.to_header()})
    path = store.open_path(ref)
    if path is None:
        logger.error("stored file %s is missing on disk", ref.sha256)
        raise FileNotFoundError(ref.sha256)
    return File(
        path=path,
        filename=attachment_name or ref.name,
        media_type=ref.content_type,
        content_disposition_type="attachment" if attachment_name else "inline",
        headers=headers,
        etag=etag,
    )
