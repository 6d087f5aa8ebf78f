"""`pip install ./clients/python` in a fresh virtual environment gives a shop the client and nothing of
the platform: httpx and pydantic as its only dependencies, no Faust, no `common`/`order`/`payment`/
`delivery` package, and no import of one from any client module (the plugin's included)."""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1]
PLATFORM = "saga-platform"  # the platform's distribution (the repository's pyproject.toml)

# Run inside the fresh environment: what got installed, what importing the whole client pulled in.
PROBE = """
import importlib, json, pkgutil, sys
from importlib import metadata
import saga_client
for module in pkgutil.walk_packages(saga_client.__path__, "saga_client."):
    if module.name != "saga_client.pytest_plugin":  # needs the [pytest] extra, checked apart
        importlib.import_module(module.name)
installed = sorted(d.metadata["Name"].lower() for d in metadata.distributions())
print(json.dumps({
    "requires": metadata.requires("saga-client"),
    "installed": installed,
    "loaded": sorted({name.split(".")[0] for name in sys.modules}),
    "from": saga_client.__file__,
}))
"""


def test_the_client_installs_alone_with_httpx_and_pydantic_and_imports_nothing_of_the_platform(
    tmp_path: Path,
) -> None:
    environment = tmp_path / "shop-venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(CLIENT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    probe = subprocess.run(
        [python, "-I", "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)

    required = {_name(line) for line in found["requires"]}
    plain = {_name(line) for line in found["requires"] if "extra ==" not in line}
    assert plain == {"httpx", "pydantic"}
    assert required <= {"httpx", "pydantic", "pytest", "aiokafka"}
    assert str(environment) in found["from"]  # the installed copy, not this checkout's
    for package in (
        "faust",
        "aiokafka",
        "sqlalchemy",
        "psycopg",
        "common",
        "order",
        "payment",
        "delivery",
        "saga_tools",
    ):
        assert package not in found["loaded"], f"the client imported {package}"
    for distribution in ("faust-streaming", "aiokafka", "sqlalchemy", "psycopg", PLATFORM):
        assert distribution not in found["installed"], f"installing the client installed {distribution}"


def _name(requirement: str) -> str:
    """The distribution named by a requirement line such as `httpx<0.29,>=0.28`."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found is not None, requirement
    return found[0].lower()
