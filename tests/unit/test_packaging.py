"""Every Python package directory of the layout is installed under ``vigil``, and every folder of
package data is declared too (setuptools warns, page after page, about data folders it was not told of)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def directory_of(package: str) -> Path:
    """Where ``package`` lives in the checkout, through the nearest ``package-dir`` mapping."""
    mapped = sorted(SETUPTOOLS["package-dir"], key=len, reverse=True)
    base = next(m for m in mapped if package == m or package.startswith(m + "."))
    rest = package.removeprefix(base).strip(".")
    return ROOT / SETUPTOOLS["package-dir"][base] / Path(*rest.split(".") if rest else ())


def test_every_package_and_data_directory_is_declared() -> None:
    declared = set(SETUPTOOLS["packages"])
    code = set()
    for package, directory in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / directory).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / directory)
            code.add(".".join([package, *relative.parts]))
    data = set(SETUPTOOLS["package-data"])
    parents = {".".join(p.split(".")[:n]) for p in data for n in range(1, p.count(".") + 1)}
    assert declared == code | data | parents
    for package in data - code:
        assert directory_of(package).is_dir(), package


def test_package_data_reaches_into_no_undeclared_folder() -> None:
    # A pattern such as "k8s/*" ships a folder setuptools was not told is a package: it warns, at length.
    for package, patterns in SETUPTOOLS["package-data"].items():
        for pattern in patterns:
            assert "/" not in pattern, f"{package}: declare the folder of {pattern!r} as a package"


def test_every_data_package_ships_its_files() -> None:
    for package, patterns in SETUPTOOLS["package-data"].items():
        folder = directory_of(package)
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"{package}: nothing matches {pattern!r} in {folder}"
