"""The stylesheet (and any other file in ``gateway/static/``), served from memory under URLs that
name their content: ``/static/gateway.<hash>.css``.

A hashed URL can never change what it answers, so browsers and shared caches may keep it for a
year without asking again (``immutable``). The plain name (``/static/gateway.css``) and a hash
that is not the current one (a page from before a deploy) still get the current file, but only
with ``no-cache``: a browser revalidates it (``ETag``) before each use, so nothing stale sticks.
Pages link the hashed URL through the ``static_url`` template global.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_HASH_LENGTH = 16
# name.<hex>.ext -> the file "name.ext" (any hex length, so an old or wrong hash is recognised).
_HASHED = re.compile(r"^(?P<stem>[^/]+)\.(?P<hash>[0-9a-f]{8,64})(?P<ext>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class StaticFile:
    name: str  # as in the folder: gateway.css
    hashed_name: str  # gateway.<hash>.css
    body: bytes
    content_type: str
    etag: str


def _load(path: Path) -> StaticFile:
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:_HASH_LENGTH]
    stem, dot, ext = path.name.rpartition(".")
    hashed = f"{stem}.{digest}.{ext}" if dot else f"{path.name}.{digest}"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
        content_type += "; charset=utf-8"
    return StaticFile(path.name, hashed, body, content_type, f'"{digest}"')


class StaticFiles:
    """Every file of one folder (not its subfolders), read once at start-up."""

    def __init__(self, folder: Path, security_headers: Mapping[str, str]) -> None:
        files = [_load(p) for p in sorted(folder.iterdir()) if p.is_file()]
        self._by_name = {f.name: f for f in files}
        self._by_hashed = {f.hashed_name: f for f in files}
        # The pages' security headers too (so the edge middleware adds none of its own, and in
        # particular not its no-store), with this response's own cache lifetime.
        base = {k: v for k, v in security_headers.items() if k.lower() != "cache-control"}
        self._headers = {
            lifetime: {**base, "Cache-Control": lifetime} for lifetime in (IMMUTABLE, REVALIDATE)
        }

    def url(self, name: str) -> str:
        """The content-addressed URL of a file of the folder (a template global)."""
        return f"/static/{self._by_name[name].hashed_name}"

    def find(self, requested: str) -> tuple[StaticFile, bool] | None:
        """The file a requested name stands for, and whether the name is its current hash."""
        found = self._by_hashed.get(requested)
        if found is not None:
            return found, True
        found = self._by_name.get(requested)
        if found is None:
            match = _HASHED.match(requested)
            if match is None:
                return None
            found = self._by_name.get(match["stem"] + match["ext"])
            if found is None:
                return None
        return found, False

    async def handle(self, request: web.Request) -> web.Response:
        hit = self.find(request.match_info["name"])
        if hit is None:
            raise web.HTTPNotFound
        file, current = hit
        headers = dict(self._headers[IMMUTABLE if current else REVALIDATE])
        headers["ETag"] = file.etag
        if file.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = file.content_type
        return web.Response(body=file.body, headers=headers)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/static/{name}", self.handle, name="static")]
