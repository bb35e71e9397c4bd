"""The GET path as an organisation grows (docs/design.md §8: a human GET spread over 10,000 links at
least 35 %, over 100,000 links at least 25 % of the bare aiohttp handler in the same run).

``bench/run.py --only scale`` uses this: one SQLite gateway, ``--scale-links`` (10,000 and
100,000) links issued in bulk, each count in turn: every link opened once (the warm-up: a GET
that misses reads the database and renders; what is measured is the steady state), then the
bare handler and a wrk walk over all the links interleaved round by round.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pay  # bench/ is not a package: found through sys.path (run.py puts it there)
from _support import wrk_script

# docs/design.md §8 figures by number of links; other counts are reported without a target.
TARGETS = {10_000: 0.35, 100_000: 0.25}


async def issue(env: dict[str, str], count: int, start: int = 0, batch: int = 2000) -> list[str]:
    """``count`` more links (numbered from ``start``), issued in batches through
    ``LinkService.issue_many`` (one transaction per batch), as the bulk API does."""
    from gateway.config import load_settings
    from gateway.domain.links import validate_new_link
    from gateway.runtime import open_runtime

    settings = load_settings(env=env)
    tokens: list[str] = []
    async with open_runtime(settings, migrate=False) as rt:
        for first in range(start, start + count, batch):
            news = [
                validate_new_link(
                    email=f"parent{i}@example.com",
                    name=f"Parent {i}",
                    description="Spring season",
                    currency="usd",
                    items=[f"Spring fee={100 + i % 50}.00", "Jersey=25.00x2"],
                    ref=f"bench/{i}",
                    valid_for=30 * 86400,
                    max_valid_for=settings.tokens.max_age,
                )
                for i in range(first, min(first + batch, start + count))
            ]
            issued = await rt.links.issue_many(news, actor="bench")
            tokens += [link.token for link in issued]
    return tokens


def write_scripts(tmp: Path, name: str, tokens: list[str]) -> tuple[Path, Path]:
    """The timed and status-check scripts walking a file of the links' paths (one request per
    link, the phone and in-app agents in turn)."""
    paths = tmp / f"{name}.paths"
    paths.write_text("".join(f"/pay/{t}\n" for t in tokens))
    agents = [(ua, lang) for _, ua, lang in pay.PHONE_AGENTS]
    spec: dict[str, Any] = {
        "paths": [],
        "agents": agents,
        "headers": {"Accept": pay.BROWSER_ACCEPT},
        "paths_file": paths,
    }
    timed, check = tmp / f"{name}.lua", tmp / f"{name}-check.lua"
    timed.write_text(wrk_script(**spec))
    check.write_text(wrk_script(**spec, count_statuses=True))
    return timed, check


async def open_each(base: str, tokens: list[str], concurrency: int = 32) -> dict[str, Any]:
    """GET every link once, as the phone agents in turn: what the timed walk will ask, loaded."""
    statuses: dict[int, int] = {}
    queue = iter(enumerate(tokens))
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def worker() -> None:
            for i, token in queue:
                _, ua, lang = pay.PHONE_AGENTS[i % len(pay.PHONE_AGENTS)]
                headers = {"User-Agent": ua, "Accept-Language": lang, "Accept": pay.BROWSER_ACCEPT}
                async with http.get(f"{base}/pay/{token}", headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"links": len(tokens), "statuses": statuses, "seconds": round(seconds, 1)}
