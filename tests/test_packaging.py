"""The wheel holds exactly what pyproject.toml promises: every subpackage, module and sample file.

Why: the repository lays top-level folders out as ``tickguard.<folder>`` through setuptools'
``package-dir`` map, with no ``tickguard/__init__.py``. Editable installs hide mistakes in that
map (a new subfolder nobody listed, a sample file the globs miss) that only show up for someone
installing the wheel. This test builds the real wheel from a copy of the working tree (so no
``build/`` or ``*.egg-info`` lands in the repository) and reads it with :mod:`zipfile`.

The build is isolated (pip fetches ``[build-system].requires`` from the package index): the
development venv's setuptools may be older than the pinned minimum and lacks ``wheel``.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES: list[str] = PYPROJECT["tool"]["setuptools"]["packages"]
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
PACKAGE_DATA: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"].get("package-data", {})
#: top-level folders mapped onto ``tickguard.<folder>`` (data/, engine/, ...)
TOP_LEVEL = {pkg: folder for pkg, folder in PACKAGE_DIR.items() if pkg.count(".") == 1}
SAMPLES = ("synthetic_l1.parquet", "synthetic_quotes.csv.gz", "SOURCES.md")
#: never copied into the build tree: caches, environments, build outputs, tests
SKIP = (".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".pytest_cache",
        ".hypothesis", ".numba_cache", ".bench_out", "tests", "*.nbi", "*.nbc")


def _source_py_files() -> dict[str, Path]:
    """Wheel member name -> source file, for every ``.py`` under the mapped top-level folders."""
    out: dict[str, Path] = {}
    for pkg, folder in TOP_LEVEL.items():
        root = REPO / folder
        for f in root.rglob("*.py"):
            rel = f.relative_to(root)
            if "__pycache__" in rel.parts:
                continue
            out["/".join([*pkg.split("."), *rel.parts])] = f
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*SKIP))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "-w", str(tmp / "out"), str(src)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, f"wheel build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    wheels = list((tmp / "out").glob("tickguard-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        yield zf


def _dist_info(zf: zipfile.ZipFile, name: str) -> str:
    hits = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}") and n.count("/") == 1]
    assert len(hits) == 1, f"expected one {name} in the wheel, got {hits}"
    return zf.read(hits[0]).decode()


def _entry_points(zf: zipfile.ZipFile) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(delimiters=("=",))
    cp.optionxform = str  # entry-point names are case-sensitive
    cp.read_string(_dist_info(zf, "entry_points.txt"))
    return cp


def test_metadata_names_the_project(wheel: zipfile.ZipFile) -> None:
    meta = _dist_info(wheel, "METADATA")
    assert f"Name: {PYPROJECT['project']['name']}\n" in meta
    assert f"Version: {PYPROJECT['project']['version']}\n" in meta


def test_every_listed_package_is_in_the_wheel_with_init(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert PACKAGES, "pyproject lists no packages"
    for pkg in PACKAGES:
        assert pkg.startswith("tickguard."), pkg
        init = pkg.replace(".", "/") + "/__init__.py"
        assert init in names, f"{init} missing from the wheel"


def test_no_top_level_init(wheel: zipfile.ZipFile) -> None:
    # `tickguard` is an implicit namespace package: an __init__ would shadow other portions.
    assert "tickguard/__init__.py" not in wheel.namelist()
    assert not (REPO / "tickguard" / "__init__.py").exists()


def test_every_source_module_is_in_the_wheel_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    expected = _source_py_files()
    assert "tickguard/data/schema.py" in expected  # the walk itself found the data layer
    shipped = {n for n in wheel.namelist() if n.startswith("tickguard/") and n.endswith(".py")}
    missing = sorted(set(expected) - shipped)
    assert not missing, f"source modules missing from the wheel: {missing}"
    stale = sorted(shipped - set(expected))
    assert not stale, f"wheel holds modules with no source file: {stale}"
    for name in ("tickguard/data/schema.py", "tickguard/reports/cli.py"):
        assert wheel.read(name) == expected[name].read_bytes(), name


def test_every_source_folder_with_modules_is_a_listed_package() -> None:
    listed = set(PACKAGES)
    forgotten = []
    for pkg, folder in TOP_LEVEL.items():
        root = REPO / folder
        for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            rel = d.relative_to(root)
            if "__pycache__" in rel.parts or not any(d.glob("*.py")):
                continue
            dotted = ".".join([pkg, *rel.parts])
            if dotted not in listed:
                forgotten.append(dotted)
            elif dotted in PACKAGE_DIR and dotted not in TOP_LEVEL:  # nested map must point here
                assert REPO / PACKAGE_DIR[dotted] == d, (dotted, PACKAGE_DIR[dotted])
    assert not forgotten, f"folders with .py files not listed in [tool.setuptools] packages: {forgotten}"


def test_package_data_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for sample in SAMPLES:
        assert f"tickguard/data/samples/{sample}" in names, sample
    assert "tickguard/data/py.typed" in names
    # Every source file matching a package-data glob ships, byte for byte.
    for pkg, globs in PACKAGE_DATA.items():
        parent, _, leaf = pkg.rpartition(".")
        folder = REPO / PACKAGE_DIR[pkg] if pkg in PACKAGE_DIR else REPO / PACKAGE_DIR[parent] / leaf
        matched = sorted({f for g in globs for f in folder.glob(g) if f.is_file()})  # globs may name subfolders
        assert matched, f"package-data globs of {pkg} match no file"
        for f in matched:
            member = pkg.replace(".", "/") + "/" + f.relative_to(folder).as_posix()
            assert member in names, f"{member} missing from the wheel"
            assert wheel.read(member) == f.read_bytes(), member


def test_console_script(wheel: zipfile.ZipFile) -> None:
    eps = _entry_points(wheel)
    scripts = PYPROJECT["project"]["scripts"]
    assert "tickguard" in scripts
    assert dict(eps["console_scripts"]) == scripts
    module, func = scripts["tickguard"].split(":")
    source = wheel.read(module.replace(".", "/") + ".py").decode()
    assert f"def {func}(" in source


def test_strategy_entry_points_match_pyproject(wheel: zipfile.ZipFile) -> None:
    eps = _entry_points(wheel)
    declared = PYPROJECT["project"].get("entry-points", {}).get("tickguard.strategies")
    if declared is None:
        assert not eps.has_section("tickguard.strategies")
        return
    assert dict(eps["tickguard.strategies"]) == declared
    names = set(wheel.namelist())
    for target in declared.values():
        module = target.split(":")[0]
        assert module.replace(".", "/") + ".py" in names, target
