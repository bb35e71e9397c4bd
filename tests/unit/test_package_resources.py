"""Pages and the stylesheet ship inside the package (issue 11 item 7): found through the package,
and every file of both folders matched by pyproject.toml's package-data."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import gateway
from gateway.web.pages import resource_dir

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(gateway.__file__).resolve().parent


@pytest.mark.parametrize("name", ["templates", "static"])
def test_resources_are_found_inside_the_package(name: str) -> None:
    assert resource_dir(name) == PACKAGE / name
    assert not (ROOT / name).exists(), f"a stray top-level {name}/ would hide a packaging bug"


def test_package_data_ships_every_template_and_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    wanted = {
        p
        for name in ("templates", "static")
        for p in (PACKAGE / name).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert wanted, "no templates or static files found"
    assert wanted <= shipped, sorted(str(p.relative_to(PACKAGE)) for p in wanted - shipped)
    assert PACKAGE / "static" / "gateway.css" in shipped
