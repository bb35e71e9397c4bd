"""The baseline for bench/pay.py: the smallest aiohttp server there is, answering ``Hello``.

Run: ``python bench/hello.py PORT``. Same aiohttp, same interpreter and same loop policy as the
gateway, with the access log off like ``gateway serve``, so the ratio measures the gateway's own
per-request work and nothing else.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="Hello")


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
