"""The image the Dockerfile builds can run the demo: it installs every distribution the demo imports.

Docker cannot run here, so the check is made on the metadata: the modules the demo
service and the load generator import (following otel_cache's and the demo's own modules,
skipping imports guarded by ``try/except ImportError`` or ``TYPE_CHECKING``) must each come
from a distribution that the Dockerfile's ``pip install . ./demo`` installs (the demo's
dependencies, ``otel-cache[...]`` resolved through the library's extras), directly or as a
dependency (resolved through the metadata of the distributions installed here).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_files import DOCKERFILE, PYPROJECT, REPO_ROOT

DEMO_PYPROJECT = REPO_ROOT / "demo" / "pyproject.toml"
#: Our own packages, followed import by import, and where each lives in the repository.
SOURCES = {"otel_cache": REPO_ROOT, "otel_cache_demo": REPO_ROOT / "demo"}
ENTRY_MODULES = ("otel_cache_demo.service", "otel_cache_demo.loadgen")


def test_the_dockerfile_installs_the_library_and_the_demo() -> None:
    assert "RUN pip install . ./demo\n" in DOCKERFILE.read_text(encoding="utf-8")


def _module_file(module: str) -> Path | None:
    root = SOURCES.get(module.split(".")[0])
    if root is None:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _guarded(tree: ast.Module) -> set[int]:
    """ids of import nodes that may fail without harm (optional or typing-only)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        body: list[ast.stmt] = []
        if isinstance(node, ast.Try):
            caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type is not None}
            if caught & {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}:
                body = node.body
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            body = node.body
        for statement in body:
            guarded.update(id(inner) for inner in ast.walk(statement))
    return guarded


def _imports(path: Path, module: str) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = _guarded(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # maybe submodules


def _demo_imports() -> set[str]:
    """Modules outside our packages and the standard library that the demo imports."""
    seen: set[str] = set()
    external: set[str] = set()
    todo = list(ENTRY_MODULES)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # Importing a module runs its packages' __init__ first.
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = _module_file(module)
        if path is None:
            continue  # a name imported from a module, not a module
        for imported in _imports(path, module):
            top = imported.split(".")[0]
            if top in SOURCES:
                todo.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                external.add(imported)
    return external


@cache
def _files_of(name: str) -> tuple[Path, frozenset[str]]:
    distribution = importlib.metadata.distribution(name)
    base = Path(distribution.locate_file("")).resolve()
    return base, frozenset(str(file) for file in distribution.files or ())


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@cache
def _distribution_of(module: str) -> str | None:
    """The installed distribution that provides ``module`` (None: not a module, e.g. a class)."""
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    for name in _packages_distributions().get(top, []):
        base, files = _files_of(name)
        if origin.is_relative_to(base) and origin.relative_to(base).as_posix() in files:
            return canonicalize_name(name)
    return None


def _project(path: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return project


def _installed_by_the_dockerfile() -> set[str]:
    """Distributions ``pip install . ./demo`` installs, per the metadata installed here."""
    library = _project(PYPROJECT)
    own = canonicalize_name(library["name"])
    todo: list[tuple[Requirement, str]] = [(Requirement(r), "") for r in library["dependencies"]]
    pending_extras: list[str] = []
    for line in _project(DEMO_PYPROJECT)["dependencies"]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == own:
            pending_extras.extend(requirement.extras)
        else:
            todo.append((requirement, ""))
    done_extras: set[str] = set()
    while pending_extras:
        extra = pending_extras.pop()
        if extra in done_extras:
            continue
        done_extras.add(extra)
        for line in library["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == own:
                pending_extras.extend(requirement.extras)
            else:
                todo.append((requirement, ""))
    installed: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, parent_extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in visited:
            continue
        visited.add(key)
        installed.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            for extra in ("", *requirement.extras):
                todo.append((Requirement(line), extra))
    return installed


def test_the_dockerfile_installs_every_distribution_the_demo_imports() -> None:
    imports = _demo_imports()
    assert {"fastapi", "uvicorn"} <= {module.split(".")[0] for module in imports}
    needed = {name for module in imports if (name := _distribution_of(module)) is not None}
    assert {"fastapi", "uvicorn", "opentelemetry-exporter-prometheus"} <= needed
    needed -= {"otel-cache", "otel-cache-demo"}  # the two projects the Dockerfile installs
    missing = needed - _installed_by_the_dockerfile()
    assert not missing, (
        f"pip install . ./demo does not install {sorted(missing)}, which the demo imports: "
        "add them to demo/pyproject.toml's dependencies"
    )
