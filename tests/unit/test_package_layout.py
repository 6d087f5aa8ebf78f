"""The packages' layout (issue #26): what the services run on (`common`) apart from the tooling around them
(`saga_tools`: the local stack, the `saga` command, the supervisor), no two modules with the same name, and
no import cycle between packages.

Layers, bottom up: `common` ← the services (payment, order, delivery, console) ← `saga_tools`. A package
imports only from its own layer's package or below; tooling may import the services, never the reverse.

Imports are read from the source with `ast`, all of them: top-level, inside functions, relative.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "common"
TOOLING = "saga_tools"
SERVICES = ("payment", "order", "delivery", "console")
INSTALLED = (RUNTIME, *SERVICES, TOOLING)
# Names every service fills the same way (and `common` holds the base of some: common/app.py is what each
# service's app.py builds on). Anywhere else a name says one job, so it appears once.
SERVICE_ROLES = {"__init__", "__main__", "app", "api", "answers", "handlers", "models", "queries", "metrics"}


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """Every module of `package` as (dotted name, file)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported(name: str, path: Path) -> set[str]:
    """The dotted names a module imports, wherever in the module the import statement is."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_imports() -> dict[str, dict[str, set[str]]]:
    """For each installed package: the other first-party packages it imports, with the modules that do."""
    graph: dict[str, dict[str, set[str]]] = {package: {} for package in INSTALLED}
    for package in INSTALLED:
        for name, path in modules(package):
            for target in {dotted.split(".")[0] for dotted in imported(name, path)}:
                if target in INSTALLED and target != package:
                    graph[package].setdefault(target, set()).add(name)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every package that reaches itself again, as the path that does."""
    found = []
    for start in graph:
        paths = [[start, target] for target in graph[start]]
        seen: set[str] = set()
        while paths:
            path = paths.pop()
            if path[-1] == start:
                found.append(path)
            elif path[-1] not in seen:
                seen.add(path[-1])
                paths.extend([*path, target] for target in graph[path[-1]])
    return found


def test_the_runtime_imports_neither_the_tooling_nor_a_service() -> None:
    imports = package_imports()[RUNTIME]
    assert {target: sorted(by) for target, by in imports.items() if target != RUNTIME} == {}


def test_no_service_imports_the_tooling() -> None:
    graph = package_imports()
    offenders = {service: sorted(graph[service].get(TOOLING, ())) for service in SERVICES}
    assert {service: by for service, by in offenders.items() if by} == {}


def test_no_package_imports_itself_back_through_another() -> None:
    graph = package_imports()
    found = cycles(graph)
    described = [
        ", ".join(f"{sorted(graph[a][b])[0]} imports {b}" for a, b in pairwise(path)) for path in found
    ]
    assert described == []


def test_no_two_modules_share_a_name_unless_it_is_a_service_role() -> None:
    names = Counter(path.stem for package in INSTALLED for _, path in modules(package))
    repeated = {
        name: sorted(
            dotted for package in INSTALLED for dotted, path in modules(package) if path.stem == name
        )
        for name, count in names.items()
        if count > 1 and name not in SERVICE_ROLES
    }
    assert repeated == {}


def test_the_runtime_and_the_tooling_use_no_service_role_name_twice() -> None:
    shared = [path.stem for package in (RUNTIME, TOOLING) for _, path in modules(package)]
    assert [name for name, count in Counter(shared).items() if count > 1 and name != "__init__"] == []


def test_every_package_is_installed_and_in_the_image() -> None:
    on_disk = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk == set(INSTALLED)
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {pattern.rstrip("*") for pattern in find["include"]} == set(INSTALLED)
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert set(INSTALLED) <= copied


def test_the_saga_command_is_the_tooling_s() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["saga"].partition(":")
    assert module.split(".")[0] == TOOLING
    path = ROOT / (module.replace(".", "/") + ".py")
    assert any(
        isinstance(node, ast.FunctionDef) and node.name == function
        for node in ast.parse(path.read_text()).body
    )
