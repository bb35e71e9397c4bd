"""Build the labelled user-agent corpus in tests/data/user_agents/corpus.csv.

Sources (see tests/data/user_agents/README.md for licences):

* ``crawler-user-agents`` (PyPI, installed in the venv): every ``instances`` string of
  ``crawler-user-agents.json``. Tag ``social-preview`` -> ``preview``, ``http-library`` ->
  ``tool``, anything else -> ``crawler``.
* ``device-detector`` (PyPI sdist, which ships matomo's upstream test fixtures): ``bots.yml``
  -> ``crawler``; clients of type ``library`` -> ``tool``; browsers -> ``human``; mobile
  apps whose string is a browser engine's (an in-app browser) -> ``in_app``. Humans are
  sampled deterministically to keep the file small; hard cases (in-app tokens, WebViews,
  device models containing bot-like words) are always kept.
* ``crawler_detect_social.txt``: JayBizzle/Crawler-Detect ``tests/data/categories/social.txt``
  (link-preview fetchers), vendored verbatim -> ``preview``.
* ``curated.csv``: hand-labelled link-preview fetchers, mail scanners, tools and in-app
  browsers, each row naming where the string was published.

Usage::

    pip download --no-deps --no-binary :all: device-detector==6.5.1 -d /tmp/dd
    python scripts/build_ua_corpus.py --device-detector /tmp/dd/device_detector-6.5.1.tar.gz

The output is deterministic for the same inputs. Strings that two sources label differently
keep the first label in the order curated > crawler-detect > crawler-user-agents >
device-detector (the curated file is checked by hand).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "user_agents"
FIELDS = ("user_agent", "label", "in_app", "source")

# Entries of crawler-user-agents whose only instance is a person's in-app browser (an
# Instagram WebView on one phone build, a Facebook in-app browser): labelling a person a bot
# contradicts the gateway's rule that in-app browsers are people, so they are left out.
CUA_EXCLUDED_PATTERNS = {r"AP3A\.240617\.008", "MetaIAB Facebook"}

# device-detector humans are sampled 1 in SAMPLE_EVERY (by a hash of the string, so the
# choice does not depend on file order) unless they are a hard case.
SAMPLE_EVERY = 4
HARD_CASE = re.compile(
    r"bot|spider|crawl|line|facebook|FBAN|FBAV|FB_IAB|Instagram|GSA/|; wv\)|musical_ly|"
    r"Bytedance|MicroMessenger|KAKAOTALK|LinkedIn|Snapchat|Twitter|WhatsApp|Telegram|Viber|"
    r"Outlook|Gmail|Pinterest",
    re.IGNORECASE,
)
BROWSER_SHAPE = re.compile(r"^(?:Mozilla/|Opera/)")
# device-detector also files under "browser" the HTTP clients of apps and of the OS (Dalvik,
# CFNetwork) and bare device names ("iPhone15Pro"). Whether such a request is a person opening a
# page is unknowable from the string, so they are left out of the labelled corpus.
APP_CLIENT = re.compile(r"^Dalvik/|CFNetwork/|^[\w.-]+$")

Row = tuple[str, str, str, str]


def crawler_user_agents_rows() -> Iterator[Row]:
    import crawleruseragents  # type: ignore[import-untyped]

    path = Path(crawleruseragents.__file__).parent / "crawler-user-agents.json"
    version = _dist_version("crawler-user-agents")
    source = f"crawler-user-agents {version}"
    for entry in json.loads(path.read_text(encoding="utf-8")):
        if entry["pattern"] in CUA_EXCLUDED_PATTERNS:
            continue
        tags = entry.get("tags", [])
        label = "preview" if "social-preview" in tags else "crawler"
        if "http-library" in tags:
            label = "tool"
        for ua in entry.get("instances", []):
            yield ua, label, "", source


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _yaml_scalar(raw: str) -> str | None:
    """Decode the one-line YAML scalars the fixtures use (plain, '...' or "...")."""
    raw = raw.strip()
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return raw or None


def _fixture_entries(text: str) -> Iterator[dict[str, str]]:
    """Yield user_agent / bot / client type / client name of each fixture entry.

    A tiny reader for this one file layout, so the build needs no YAML library.
    """
    for block in re.split(r"^-\s*$", text, flags=re.MULTILINE):
        lines = block.splitlines()
        entry: dict[str, str] = {}
        section = ""
        for i, line in enumerate(lines):
            if line.startswith("  user_agent:"):
                value = line[len("  user_agent:") :]
                # A long string may be folded over several more-indented lines.
                for more in lines[i + 1 :]:
                    if more.startswith("    ") and not re.match(r"^\s+[a-z_]+:", more):
                        value += " " + more.strip()
                    else:
                        break
                decoded = _yaml_scalar(value)
                if decoded:
                    entry["user_agent"] = decoded
            elif re.match(r"^  [a-z_]+:", line):
                section = line.strip().rstrip(":").split(":")[0]
                if section == "bot":
                    entry["bot"] = "1"
            elif section == "client" and line.startswith("    type:"):
                entry["client_type"] = _yaml_scalar(line.split(":", 1)[1]) or ""
            elif section == "client" and line.startswith("    name:"):
                entry["client_name"] = _yaml_scalar(line.split(":", 1)[1]) or ""
        if "user_agent" in entry:
            yield entry


def device_detector_rows(sdist: Path) -> Iterator[Row]:
    version = re.search(r"device[_-]detector-([\d.]+)", sdist.name)
    source_base = f"device-detector {version.group(1) if version else '?'}"
    with tarfile.open(sdist) as tar:
        members = sorted(
            (
                m
                for m in tar.getmembers()
                if re.search(r"tests/fixtures/upstream/[^/]+\.yml$", m.name)
            ),
            key=lambda m: m.name,
        )
        for member in members:
            handle = tar.extractfile(member)
            if handle is None:
                continue
            text = handle.read().decode("utf-8")
            fixture = member.name.rsplit("/", 1)[1]
            source = f"{source_base} {fixture}"
            for entry in _fixture_entries(text):
                ua = entry["user_agent"]
                kind = entry.get("client_type", "")
                if entry.get("bot"):
                    yield ua, "crawler", "", source
                elif kind == "library":
                    yield ua, "tool", "", source
                elif not BROWSER_SHAPE.match(ua) and kind != "browser":
                    continue  # an app's own HTTP client: neither clearly person nor bot
                elif kind == "mobile app":
                    yield ua, "in_app", entry.get("client_name", ""), source
                elif kind == "browser" and not APP_CLIENT.search(ua) and _keep_human(ua):
                    yield ua, "human", "", source


def _keep_human(ua: str) -> bool:
    if HARD_CASE.search(ua):
        return True
    digest = hashlib.sha256(ua.encode("utf-8")).digest()
    return digest[0] % SAMPLE_EVERY == 0


def text_rows(path: Path, label: str, source: str) -> Iterator[Row]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            yield line.strip(), label, "", source


def curated_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield row["user_agent"], row["label"], row["in_app"], row["source"]


def build(device_detector: Path | None) -> list[Row]:
    streams: list[Iterator[Row]] = [
        curated_rows(DATA / "curated.csv"),
        text_rows(
            DATA / "crawler_detect_social.txt",
            "preview",
            "Crawler-Detect tests/data/categories/social.txt",
        ),
        crawler_user_agents_rows(),
    ]
    if device_detector is not None:
        streams.append(device_detector_rows(device_detector))
    seen: set[str] = set()
    rows: list[Row] = []
    for stream in streams:
        for ua, label, in_app, source in stream:
            if ua in seen:
                continue
            seen.add(ua)
            rows.append((ua, label, in_app, source))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device-detector", type=Path, help="device-detector sdist (.tar.gz)")
    parser.add_argument("--out", type=Path, default=DATA / "corpus.csv")
    args = parser.parse_args(argv)
    rows = build(args.device_detector)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows)
    counts = Counter(label for _, label, _, _ in rows)
    print(f"wrote {len(rows)} rows to {args.out}: {dict(sorted(counts.items()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
