"""The manifests in deploy/ are valid Kubernetes objects, least-privilege, and run a real
`topoctl` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import main

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = "1.32.0"


def _objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


OBJECTS = _objects()


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_manifest_is_valid_in_strict_mode(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_typo() -> None:
    daemonset = next(o for o in OBJECTS if o["kind"] == "DaemonSet")
    broken = yaml.safe_load(yaml.safe_dump(daemonset))
    broken["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_agent_rbac_is_least_privilege() -> None:
    role = next(
        o for o in OBJECTS if o["kind"] == "ClusterRole" and "agent" in o["metadata"]["name"]
    )
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("nodes", "get"),
        ("nodes", "list"),
        ("nodes", "watch"),
        ("nodes", "patch"),
        ("nodes/status", "patch"),
    }
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])


def test_agent_pod_runs_a_valid_topoctl_agent_command() -> None:
    daemonset = next(o for o in OBJECTS if o["kind"] == "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["hostNetwork"] is True
    assert container["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # The arguments parse as the real command would (--help stops before any I/O).
    result = CliRunner().invoke(main, [*container["args"], "--help"], env={"NODE_NAME": "n1"})
    assert result.exit_code == 0, result.output
    assert "The node agent" in result.output
