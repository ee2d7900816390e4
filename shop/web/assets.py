"""The pages' static files: read once at start-up, each served under a name carrying a hash
of its content (`static('shop.css')` in a template gives `/static/shop.3f2a1b9c04.css`), so
a browser keeps it for a year and fetches it again only when it changed; text files are
gzipped once, ahead of time, and sent compressed to browsers that accept gzip.

The plain names (`/static/shop.css`) still answer, cached for an hour, for anything that
links to them directly."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

FOREVER = "public, max-age=31536000, immutable"
AN_HOUR = "public, max-age=3600"
COMPRESSIBLE = {".css", ".js", ".txt", ".svg", ".html", ".json"}


@dataclass(frozen=True)
class Asset:
    name: str
    hashed: str
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


class Assets:
    def __init__(self, folder: Path) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_hashed: dict[str, Asset] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:10]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            small = gzip.compress(body, 9, mtime=0) if path.suffix in COMPRESSIBLE else None
            asset = Asset(path.name, hashed, body, small if small and len(small) < len(body) else None, media, f'"{digest}"')
            self.by_name[path.name] = asset
            self.by_hashed[hashed] = asset

    def url(self, name: str) -> str:
        """The address of a static file by its plain name (its hashed name)."""
        return f"/static/{self.by_name[name].hashed}"

    def response(self, request: Request, name: str) -> Response:
        asset, cache = self.by_hashed.get(name), FOREVER
        if asset is None:
            asset, cache = self.by_name.get(name), AN_HOUR
        if asset is None:
            raise NotFoundException(f"no static file {name!r}")
        headers = {"cache-control": cache, "etag": asset.etag, "vary": "accept-encoding"}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(content=b"", status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["content-encoding"] = asset.gzipped, "gzip"
        return Response(content=body, media_type=asset.media_type, headers=headers)


ASSETS = Assets(Path(__file__).resolve().parent / "static")


class StaticFiles(Controller):
    path = "/static"
    opt = {"exclude_from_auth": True}
    include_in_schema = False

    @get("/{name:str}", cache=False)
    async def file(self, request: Request, name: FromPath[str]) -> Response:
        return ASSETS.response(request, name)
