"""Folders shipped inside the gateway package, found the same way by the web app and the CLI."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_dir(name: str) -> Path:
    """A folder shipped inside the gateway package (``templates``, ``static``).

    Found through the package itself, so an installed wheel renders the same pages as a
    checkout; nothing searches the folders above it.
    """
    package = resources.files("gateway")
    if not isinstance(package, Path):  # a zipped install: Jinja and aiohttp need real files
        raise RuntimeError("the gateway package must be installed as files, not zipped")
    path = package / name
    if not path.is_dir():
        raise RuntimeError(f"the gateway package has no {name}/ folder (a broken install?)")
    return path
