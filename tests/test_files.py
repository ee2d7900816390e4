"""The file store (`common.files`): kinds recognised by content, uploads capped while they are
read, content stored once by its hash, and a failed transaction leaves no file and no row."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from common.errors import DomainError
from common.files import JPEG, OFD, PDF, PNG, WEBP, FileStore, etag_matches, sniff_file
from common.tables import StoredFile

MB = 1024 * 1024


def stored_files(store: FileStore) -> set[str]:
    """Every kept file (not what is on its way in tmp/)."""
    return {
        os.path.relpath(os.path.join(d, f), store.root)
        for d, _, files in os.walk(store.root)
        if not os.path.relpath(d, store.root).startswith("tmp")
        for f in files
    }


def leftovers(store: FileStore) -> list[str]:
    return os.listdir(store.tmp) if store.tmp.exists() else []


@pytest.fixture
def store(tmp_path) -> FileStore:
    return FileStore(tmp_path)


def zip_with(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as container:
        for name in names:
            container.writestr(name, "<ofd:OFD/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, JPEG),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, PNG),
        (b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 20, WEBP),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF),
        (zip_with("OFD.xml", "Doc_0/Document.xml"), OFD),
        (zip_with("Doc_0/OFD.xml"), None),  # OFD.xml not at the root: just a ZIP
        (zip_with("word/document.xml"), None),
        (b"PK\x03\x04 not really a zip", None),
        (b"GIF89a" + b"\0" * 20, None),
        (b"hello, I am text named photo.jpg", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
    ],
)
def test_kinds_are_recognised_by_content(tmp_path, content, kind):
    path = tmp_path / "upload.jpg"  # the name says nothing
    path.write_bytes(content)
    assert sniff_file(path) == kind


async def chunks(total: int, size: int = 64 * 1024, seen: list[int] | None = None):
    sent = 0
    while sent < total:
        chunk = b"\x89PNG\r\n\x1a\n".ljust(min(size, total - sent), b"\0") if sent == 0 else b"\0" * min(size, total - sent)
        sent += len(chunk)
        if seen is not None:
            seen.append(sent)
        yield chunk


async def test_receive_hashes_and_removes_its_temporary_file(store):
    data = b"".join([c async for c in chunks(200_000)])
    async with store.receive(chunks(200_000), max_bytes=MB) as received:
        assert received.path.read_bytes() == data
        assert (received.size, received.sha256, received.content_type) == (len(data), hashlib.sha256(data).hexdigest(), PNG)
    assert not received.path.exists() and leftovers(store) == []


async def test_receive_stops_reading_at_the_cap_and_keeps_nothing(store):
    seen: list[int] = []
    with pytest.raises(DomainError) as refused:
        async with store.receive(chunks(50 * MB, seen=seen), max_bytes=5 * MB):
            pytest.fail("over the cap, nothing is received")
    assert refused.value.code == "validation_failed" and refused.value.extra["errors"][0]["field"] == "file"
    assert "larger than 5 MB" in refused.value.detail
    assert seen[-1] <= 5 * MB + 64 * 1024  # the chunk that passed the cap was the last one read
    assert leftovers(store) == [] and stored_files(store) == set()


async def test_an_empty_upload_is_refused(store):
    with pytest.raises(DomainError) as refused:
        async with store.receive(chunks(0), max_bytes=MB):
            pass
    assert refused.value.code == "validation_failed"


async def test_the_same_content_is_one_file_and_one_row(app, store):
    async with store.transaction() as files:
        first = await files.put_bytes(b"%PDF-1.4 the same invoice", PDF)
    async with store.transaction() as files:
        again = await files.put_bytes(b"%PDF-1.4 the same invoice", PDF)
    assert first == again and first.sha256 == hashlib.sha256(b"%PDF-1.4 the same invoice").hexdigest()
    assert stored_files(store) == {f"{first.sha256[:2]}/{first.sha256[2:]}"}
    assert store.path_of(first.sha256).read_bytes() == b"%PDF-1.4 the same invoice"
    assert await StoredFile.count() == 1


async def test_a_received_upload_is_moved_into_place(app, store):
    data = zip_with("OFD.xml")
    async with store.receive(chunks_of(data), max_bytes=MB) as received, store.transaction() as files:
        ref = await files.put_received(received)
    assert ref.content_type == OFD and ref.name == f"{ref.sha256}.ofd"
    assert store.path_of(ref.sha256).read_bytes() == data and leftovers(store) == []


async def chunks_of(data: bytes):
    yield data


async def test_a_failed_transaction_removes_what_it_wrote_but_not_what_was_there(app, store):
    async with store.transaction() as files:
        kept = await files.put_bytes(b"%PDF-1.4 already kept", PDF)
    before = stored_files(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction() as files:
            await files.put_bytes(b"%PDF-1.4 new in this transaction", PDF)
            await files.put_bytes(b"%PDF-1.4 already kept", PDF)  # another row's file
            assert len(stored_files(store)) == 2
            raise Boom
    assert stored_files(store) == before
    assert [r["sha256"] for r in await StoredFile.select(StoredFile.sha256)] == [kept.sha256]
    assert leftovers(store) == []


async def test_a_missing_file_is_written_again_by_the_same_content(app, store):
    async with store.transaction() as files:
        ref = await files.put_bytes(b"%PDF-1.4 lost on disk", PDF)
    store.path_of(ref.sha256).unlink()
    async with store.transaction() as files:
        assert await files.put_bytes(b"%PDF-1.4 lost on disk", PDF) == ref
    assert store.path_of(ref.sha256).read_bytes() == b"%PDF-1.4 lost on disk"


def test_if_none_match():
    sha = "ab" * 32
    assert etag_matches(f'"{sha}"', sha)
    assert etag_matches(f'W/"{sha}"', sha)
    assert etag_matches(f'"other", "{sha}"', sha)
    assert etag_matches("*", sha)
    assert not etag_matches('"other"', sha) and not etag_matches(None, sha) and not etag_matches("", sha)
