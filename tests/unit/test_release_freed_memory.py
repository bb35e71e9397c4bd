"""gateway.memory.release_freed_memory: pages a cache lets go of leave RSS (on glibc), which is
what keeps the 100,000-link process under design §8's 150 MB after its kept-inflated pages
are dropped (gateway.web.payable)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh interpreter: ~40 MB of page-sized blocks with a long-lived one every hundred (so the
# freed blocks are not all at the heap's top, which free() alone would give back), then the
# pages freed. RSS in MB after the free and after the release.
SCRIPT = """
import os
from gateway.memory import release_freed_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

pages, keep = [], []
for i in range(20_000):
    pages.append(bytes([i % 251]) * 2000)
    if i % 100 == 0:
        keep.append(bytes([i % 7]) * 600)
pages.clear()
freed = rss_mb()
release_freed_memory()
print(freed, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS as /proc tells it")
def test_pages_let_go_leave_the_processs_resident_memory() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    freed, released = (float(n) for n in out.split())
    assert freed - released > 20, (freed, released)
