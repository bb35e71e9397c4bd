"""What gets installed (issue 11 item 8): floors the suite passes on, caps on the majors the code
reaches into, hashed locks that agree with pyproject.toml, and the demo's mail sink kept out of
the runtime dependencies. The floors themselves are checked by ``scripts/check-floors``."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(r) for r in PYPROJECT["dependencies"]]
EXTRAS = {
    name: [Requirement(r) for r in reqs]
    for name, reqs in PYPROJECT["optional-dependencies"].items()
}
LOCKS = {
    "runtime.lock": RUNTIME,
    "demo.lock": RUNTIME + EXTRAS["demo"],
    "dev.lock": RUNTIME + EXTRAS["demo"] + EXTRAS["dev"],
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def runtime(name: str) -> Requirement:
    return next(r for r in RUNTIME if canonicalize_name(r.name) == canonicalize_name(name))


def read_lock(name: str) -> dict[str, tuple[Version, int]]:
    """Every pinned package of a lock file: its version and how many hashes it carries."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            assert current not in pins, f"{name}: {current} pinned twice"
            pins[current] = (Version(match[2]), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_each_lock_pins_every_declared_dependency_inside_its_range_with_hashes(lock: str) -> None:
    pins = read_lock(lock)
    assert pins, lock
    for requirement in LOCKS[lock]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}: run scripts/lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside {requirement.specifier}: run scripts/lock"
        )
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_known_bad_versions_are_excluded_and_majors_capped() -> None:
    bad = {
        "SQLAlchemy": ["2.0.30", "2.0.37", "2.2.0"],  # SQLite engine creation; next minor
        "stripe": ["12.4.0", "14.3.0", "14.4.2", "17.0.0"],  # v1, session=, to_dict warning
        "aiohttp": ["3.13.5", "4.0.0"],  # web.RequestKey
        "crawlerdetect": ["0.3.2", "0.5.0"],  # get_compiled_crawler_regex
    }
    for name, versions in bad.items():
        for version in versions:
            assert version not in runtime(name).specifier, f"{name} {version} is allowed"


def test_the_floors_file_holds_exactly_the_declared_floors() -> None:
    floors = {
        canonicalize_name(match[1]): match[2]
        for line in (ROOT / "requirements" / "floors.txt").read_text().splitlines()
        if (match := _PIN.match(line))
    }
    declared = RUNTIME + EXTRAS["demo"]
    for requirement in declared:
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{requirement} has no single floor"
        assert Version(floors[canonicalize_name(requirement.name)]) == Version(lower[0]), (
            requirement
        )
    assert len(floors) == len(declared)


def test_the_demo_mail_sink_is_not_a_runtime_dependency() -> None:
    names = {canonicalize_name(r.name) for r in RUNTIME}
    assert "aiosmtpd" not in names
    assert "aiosmtpd" in {canonicalize_name(r.name) for r in EXTRAS["demo"]}
    assert "aiosmtpd" not in read_lock("runtime.lock")


def test_serve_imports_without_aiosmtpd_and_the_demo_says_which_extra_it_needs(
    tmp_path: Path,
) -> None:
    # aiosmtpd made unimportable, as in an install without the demo extra.
    script = """
import sys
sys.modules["aiosmtpd"] = None
import gateway.app, gateway.cli, gateway.runtime  # what gateway serve and the CLI load
from gateway.config import load_settings
gateway.app.create_app(load_settings(path=None, env={}, demo=True))
assert not any(m.startswith("aiosmtpd") and sys.modules[m] for m in sys.modules)
sys.exit(gateway.cli.main(["demo", "--port", "0", "--database", sys.argv[1]]))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "demo.sqlite3")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "demo extra" in result.stderr and "requirements/demo.lock" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before touching the demo's database


def test_the_readme_quick_start_installs_from_the_locks_and_ci_runs_its_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick_start, re.S)
    assert len(blocks) == 2 and all(block.count("\n") == 1 for block in blocks), blocks
    demo, tests = (block.strip() for block in blocks)
    assert "-r requirements/demo.lock" in demo and demo.endswith("gateway demo")
    assert "-r requirements/dev.lock" in tests and tests.endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci, ".ci/run must run the README's test command verbatim"
