"""deploy/ renders with kustomize into valid objects (strict, on the last four Kubernetes
minor versions kubernetes-validate ships) that say what docs/architecture.md asks of them."""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
from click.testing import CliRunner
from kubernetes_validate import utils as kv_utils

from reconciler.cli import main
from tests.deploy.manifests import (
    BASE,
    COMPONENTS,
    EXAMPLE,
    REPO,
    TARGETS,
    container,
    controller_flags,
    env_flag,
    find,
    ident,
    render,
)

# Custom resources: no schema in kubernetes-validate (checked by their own tests below).
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.lstrip("v").split(".")
    return int(major), int(minor_)


KUBERNETES_VERSIONS = [
    f"{m[0]}.{m[1]}.0" for m in sorted({minor(v) for v in kv_utils.all_versions()})[-4:]
]
# The interface of `topoctl run`, fixed by the controller's issue (its flags, plus the
# credential files docs/controller.md describes). The --help comparison comes with the command.
RUN_FLAGS = {
    "--git-url", "--git-ref", "--git-path", "--source-dir", "--poll",
    "--webhook-secret-file", "--cache-dir", "--kubeconfig", "--context", "--listen",
    "--lease-name", "--lease-namespace", "--identity", "--lease-duration", "--resync",
    "--dry-run", "--log-format", "--git-ssh-key-file", "--git-known-hosts-file",
    "--git-token-file", "--commit-status", "--commit-status-token-file",
    "--commit-status-repo", "--commit-status-api-url", "--commit-status-context",
}  # fmt: skip

EXAMPLE_OBJECTS = render(EXAMPLE)
CASES = [
    pytest.param(obj, version, id=f"{target}:{ident(obj)}@{version}")
    for target, path in TARGETS.items()
    for obj in render(path)
    if (obj["apiVersion"], obj["kind"]) not in CRD_KINDS
    for version in KUBERNETES_VERSIONS
]


def test_four_kubernetes_versions_are_checked() -> None:
    assert len(KUBERNETES_VERSIONS) == 4
    assert minor(KUBERNETES_VERSIONS[-1]) == minor(kubernetes_validate.latest_version())


@pytest.mark.parametrize(("obj", "version"), CASES)
def test_rendered_object_is_valid_in_strict_mode(obj: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_catches_a_typo() -> None:
    broken = copy.deepcopy(find(EXAMPLE_OBJECTS, "Deployment", "topoctl"))
    broken["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_example_uses_every_component() -> None:
    kustomization = (EXAMPLE / "kustomization.yaml").read_text()
    for component in COMPONENTS:
        assert f"../../components/{component.name}" in kustomization
    kinds = {o["kind"] for o in EXAMPLE_OBJECTS}
    assert "ServiceMonitor" in kinds and "ServiceMonitor" not in {o["kind"] for o in render(BASE)}


def test_the_agent_own_node_policy_is_on_by_default() -> None:
    base = {o["kind"] for o in render(BASE)}
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= base


@pytest.mark.parametrize("path", [BASE, EXAMPLE], ids=["base", "example"])
def test_everything_lives_in_the_one_privileged_namespace(path: Path) -> None:
    objects = render(path)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["topoctl-system"]
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    elsewhere = {
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("namespace") not in (None, "topoctl-system")
    }
    # only grants where the controller's requests go: Node Events in default, the
    # kubelets' node Leases in kube-node-lease
    assert elsewhere == {
        ("RoleBinding", "default", "topoctl-events"),
        ("Role", "kube-node-lease", "topoctl-node-leases"),
        ("RoleBinding", "kube-node-lease", "topoctl-node-leases"),
    }


# --- the controller ---------------------------------------------------------------------

DEPLOYMENT = find(EXAMPLE_OBJECTS, "Deployment", "topoctl")
POD = DEPLOYMENT["spec"]["template"]["spec"]
CONTROLLER = container(DEPLOYMENT, "controller")
FLAGS = controller_flags(EXAMPLE_OBJECTS)


def test_the_deployment_uses_only_flags_of_topoctl_run() -> None:
    assert set(FLAGS) <= RUN_FLAGS, set(FLAGS) - RUN_FLAGS
    assert "--git-url" in FLAGS and "--source-dir" not in FLAGS
    assert "--git-token-file" not in FLAGS  # the example is ssh: a key and known_hosts
    assert {"--git-ssh-key-file", "--git-known-hosts-file"} <= set(FLAGS)


def test_two_replicas_elect_a_leader_named_by_the_pod() -> None:
    assert DEPLOYMENT["spec"]["replicas"] == 2
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in CONTROLLER["env"]}
    assert env["POD_NAME"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["fieldPath"] == "metadata.namespace"
    assert FLAGS["--identity"] == "$(POD_NAME)"
    assert FLAGS["--lease-namespace"] == "$(POD_NAMESPACE)"
    budget = find(EXAMPLE_OBJECTS, "PodDisruptionBudget", "topoctl")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == DEPLOYMENT["spec"]["selector"]


def test_probes_and_service_use_the_listen_port() -> None:
    port = int(str(FLAGS["--listen"]).rsplit(":", 1)[1])
    (named,) = CONTROLLER["ports"]
    assert named["containerPort"] == port
    assert CONTROLLER["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": named["name"]}
    assert CONTROLLER["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": named["name"]}
    service = find(EXAMPLE_OBJECTS, "Service", "topoctl")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [named["name"]]
    assert service["spec"]["selector"] == DEPLOYMENT["spec"]["selector"]["matchLabels"]
    monitor = find(EXAMPLE_OBJECTS, "ServiceMonitor", "topoctl")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


def test_the_controller_pod_meets_the_restricted_pod_security_level() -> None:
    pod_security = POD["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not POD.get("hostNetwork") and not POD.get("hostPID")
    security = CONTROLLER["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    # Unprivileged ICMP for the pod's own group, through the one safe sysctl.
    (sysctl,) = pod_security["sysctls"]
    assert sysctl["name"] == "net.ipv4.ping_group_range"
    low, high = map(int, sysctl["value"].split())
    assert low <= pod_security["runAsGroup"] <= high
    resources = CONTROLLER["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_credentials_are_files_from_the_secret_and_the_cache_an_empty_dir() -> None:
    volumes = {v["name"]: v for v in POD["volumes"]}
    mounts = {m["mountPath"]: m for m in CONTROLLER["volumeMounts"]}
    assert volumes[mounts[FLAGS["--cache-dir"]]["name"]]["emptyDir"]
    for flag in ("--git-ssh-key-file", "--git-known-hosts-file", "--webhook-secret-file"):
        directory, _ = str(FLAGS[flag]).rsplit("/", 1)
        mount = mounts[directory]
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["secret"]["secretName"] == "topoctl-credentials"
    # No secret in a variable or an argument.
    assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in CONTROLLER["env"])
    assert not any(re.search(r"token|password|key=", a) for a in CONTROLLER["args"])


# --- the agent --------------------------------------------------------------------------

DAEMONSET = find(EXAMPLE_OBJECTS, "DaemonSet", "topoctl-agent")
AGENT = container(DAEMONSET, "agent")


def test_the_agent_runs_on_every_node_from_its_first_second() -> None:
    pod = DAEMONSET["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["tolerations"] == [{"operator": "Exists"}]  # any taint, the uninitialized too
    assert AGENT["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert AGENT["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_agent_pod_runs_a_valid_topoctl_agent_command() -> None:
    env = {e["name"]: e for e in AGENT["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # The arguments parse as the real command would (--help stops before any I/O).
    result = CliRunner().invoke(main, [*AGENT["args"], "--help"], env={"NODE_NAME": "n1"})
    assert result.exit_code == 0, result.output
    assert "The node agent" in result.output


def test_the_agent_protects_kilo_subnet_through_variables_its_flags_read() -> None:
    command = main.get_command(click.Context(main), "agent")
    assert command is not None
    envvars = {f"--{p.name.replace('_', '-')}": p.envvar for p in command.params}
    env = {e["name"]: e.get("value") for e in AGENT["env"]}
    variables = [name for name in env if name.startswith("TOPOCTL_")]
    assert env["TOPOCTL_KILO_SUBNET"] == "10.4.0.0/16"
    for variable in variables:
        assert envvars[env_flag(variable)] == variable, variable
    # the commented Cozystack examples name variables the agent reads, and valid CIDRs
    text = (BASE / "agent.yaml").read_text()
    examples = re.findall(r"#\s+- name: (TOPOCTL_\w+)\n\s+#\s+value: (\S+)", text)
    assert [name for name, _ in examples] == ["TOPOCTL_POD_CIDR", "TOPOCTL_SERVICE_CIDR"]
    for variable, value in [*examples, ("TOPOCTL_KILO_SUBNET", env["TOPOCTL_KILO_SUBNET"])]:
        assert envvars[env_flag(variable)] == variable, variable
        ipaddress.ip_network(value)


def test_the_image_is_named_only_by_a_release() -> None:
    """No placeholder registry: the tree names the image `topoctl`, which each release's
    topoctl.yaml (and the images: lines of its notes) pins to ghcr.io/<repository> by
    digest (tests/test_release.py)."""
    images = {
        container(w, c)["image"] for w, c in ((DEPLOYMENT, "controller"), (DAEMONSET, "agent"))
    }
    assert images == {"topoctl"}
    tree = "\n".join(p.read_text() for p in (REPO / "deploy").rglob("*.yaml"))
    assert "example.com/topoctl" not in tree and "REGISTRY" not in tree


def _run_help() -> str:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_flag_of_the_deployment_is_in_topoctl_run_help() -> None:
    """No drift between the manifests and the command: the help is the interface."""
    helped = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", _run_help())) - {"--help"}
    assert set(FLAGS) <= helped, set(FLAGS) - helped
    assert helped == RUN_FLAGS, helped ^ RUN_FLAGS


def test_every_topoctl_variable_is_read_by_its_flag() -> None:
    command = main.get_command(click.Context(main), "run")
    assert command is not None
    envvars = {f"--{p.name.replace('_', '-')}": p.envvar for p in command.params}
    variables = [e["name"] for e in CONTROLLER["env"] if e["name"].startswith("TOPOCTL_")]
    assert variables, "the example overlay configures the source through TOPOCTL_* variables"
    for variable in variables:
        assert envvars[env_flag(variable)] == variable, variable
    assert all(
        envvars[flag] == "TOPOCTL_" + flag[2:].upper().replace("-", "_") for flag in RUN_FLAGS
    )
