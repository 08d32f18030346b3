"""`topoctl suspend`, `resume` and `reconcile` as a person runs them, against `topoctl run`
as its pod runs it: the real client over HTTP to the double, the controller under
exactly deploy/base's RBAC and the person under exactly the Role docs/controller.md
gives (bound here to a service account: the double mints tokens for those only).

What is held: a suspended scope gets no Node write while its drift is planned and
shown (status, `topoctl status`, metrics, logs, an Event), another site is written as
usual, resuming writes what drifted; a reconcile request is fetched, planned and
echoed; a person without the Role is told what is missing. With --commit-status, the
commit in force gets one status per state on the forge's double (tests/forge), and a
forge that refuses holds nothing back.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.usecases.statusmap import REQUESTED_AT, STATUS_NAME
from tests.apiserver import ApiServer
from tests.controller.gitrepos import BROKEN_EAST, CLUSTER, EAST, Remote
from tests.forge.double import TOKEN, serving
from tests.integration.test_run import (
    ENDPOINT,
    TOPOCTL,
    Run,
    annotation,
    eventually,
    node_writes,
    status,
    topoctl_run,
)
from tests.shipped_rbac import NAMESPACE, Shipped

DOC = Path(__file__).resolve().parents[2] / "docs" / "controller.md"
PERSON = "sre"

WEST = """\
apiVersion: topoctl.io/v1alpha1
kind: Site
metadata:
  name: west
spec:
  nodes:
    - name: west-gw-1
      endpoint: 198.51.100.7:51820
"""


def documented_role() -> list[dict[str, Any]]:
    """The Role and RoleBinding docs/controller.md gives a person, as written there."""
    text = DOC.read_text()
    block = re.search(r"```yaml\n(# Bind to your SRE group.*?)```", text, re.S)
    assert block is not None, "docs/controller.md lost the person's Role"
    return [dict(doc) for doc in YAML(typ="safe").load_all(block.group(1))]


@pytest.fixture
def apiserver(shipped: Shipped) -> ApiServer:
    """The double with deploy/base's RBAC."""
    return shipped.apiserver


@pytest.fixture
def person(apiserver: ApiServer, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig for someone holding exactly the documented Role; no request of theirs
    or the controller's may be refused."""
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": PERSON, "namespace": NAMESPACE},
        }
    )
    for obj in documented_role():
        if obj["kind"] == "RoleBinding":
            obj["subjects"] = [{"kind": "ServiceAccount", "name": PERSON, "namespace": NAMESPACE}]
        apiserver.seed(obj)
    shipped = Shipped(apiserver)
    yield shipped.kubeconfig(tmp_path / "person", apiserver.token(NAMESPACE, PERSON))
    refused = [(e.method, e.path) for e in apiserver.log.entries if e.status in (401, 403)]
    assert not refused, refused


def topoctl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOPOCTL, *args, "--kubeconfig", str(kubeconfig), "--lease-namespace", NAMESPACE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sample(run: Run, name: str, **labels: str) -> float | None:
    """One sample of /metrics, by name and labels."""
    _, text = run.get("/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_suspended_cluster_is_planned_and_shown_never_written_until_resumed(
    apiserver: ApiServer, person: Path, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    with topoctl_run(apiserver, remote, tmp_path) as run:
        eventually(lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820")
        assert sample(run, "topoctl_suspended", site="*") == 0.0

        done = topoctl(person, "suspend", "--reason", "incident 4711", "--by", "alice")
        assert done.returncode == 0, done.stderr
        assert "suspended the whole cluster by alice at " in done.stdout
        eventually(lambda: sample(run, "topoctl_suspended", site="*") == 1.0, what="metric")
        eventually(lambda: "suspended the whole cluster by alice" in run.output(), what="log")
        writes = node_writes(apiserver)

        remote.push({"sites/east.yaml": EAST.replace("51820", "51821")}, "port")
        assert run.hook() == 202
        eventually(lambda: status(apiserver).get("driftNodes") == 1, what="the drift")
        doc = status(apiserver)
        assert doc["suspended"]["*"]["reason"] == "incident 4711"
        assert doc["sites"]["east"]["drift"]["items"] == [
            # the ownership record would note what topoctl wrote of the key
            "east-gw-1: update kilo.squat.ai/force-endpoint, update topoctl.io/owned"
        ]
        assert annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820"
        assert node_writes(apiserver) == writes  # planned, never written
        assert sample(run, "topoctl_suspended_drift_nodes", site="east") == 1.0
        shown = topoctl(person, "status")
        assert shown.returncode == 0, shown.stderr
        assert "SUSPENDED: the whole cluster by alice at " in shown.stdout
        assert "incident 4711 - nothing is written there" in shown.stdout
        assert "east: suspended, 1 node(s) drift from git:" in shown.stdout
        assert "  east-gw-1: update kilo.squat.ai/force-endpoint" in shown.stdout
        events = [
            e for e in apiserver.objects("Event", NAMESPACE) if e["reason"] == "TopologySuspended"
        ]
        assert events and "incident 4711" in events[0]["message"]

        done = topoctl(person, "resume")
        assert done.returncode == 0, done.stderr
        assert "nothing is suspended" in done.stdout
        eventually(
            lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51821",
            what="the drift written on resume",
        )
        eventually(lambda: sample(run, "topoctl_suspended", site="*") == 0.0, what="metric 0")
        eventually(lambda: not status(apiserver).get("suspended"), what="status resumed")
        assert "resumed the whole cluster: written again from now on" in run.output()
        assert "SUSPENDED" not in topoctl(person, "status").stdout


def test_a_suspended_site_holds_while_the_others_are_written(
    apiserver: ApiServer, person: Path, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    apiserver.seed_node("west-gw-1", pod_cidr="10.244.1.0/24")
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST, "sites/west.yaml": WEST})
    with topoctl_run(apiserver, remote, tmp_path) as run:
        eventually(lambda: annotation(apiserver, "west-gw-1", ENDPOINT) == "198.51.100.7:51820")
        done = topoctl(person, "suspend", "--site", "east", "--reason", "rack move")
        assert done.returncode == 0, done.stderr
        eventually(lambda: sample(run, "topoctl_suspended", site="east") == 1.0, what="metric")
        assert sample(run, "topoctl_suspended", site="*") == 0.0

        remote.push(
            {
                "sites/east.yaml": EAST.replace("51820", "51821"),
                "sites/west.yaml": WEST.replace("51820", "51821"),
            },
            "both ports",
        )
        assert run.hook() == 202
        eventually(
            lambda: annotation(apiserver, "west-gw-1", ENDPOINT) == "198.51.100.7:51821",
            what="west written",
        )
        eventually(lambda: status(apiserver).get("driftNodes") == 1, what="east's drift")
        assert annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820"
        doc = status(apiserver)
        assert list(doc["suspended"]) == ["east"]
        assert doc["suspended"]["east"]["reason"] == "rack move"
        assert "suspended" not in doc["sites"]["west"]

        done = topoctl(person, "resume")  # the cluster's hold only: east stays
        assert "still suspended: east" in done.stdout
        done = topoctl(person, "resume", "--site", "east")
        assert done.returncode == 0, done.stderr
        eventually(
            lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51821",
            what="east written on resume",
        )
        eventually(lambda: sample(run, "topoctl_suspended", site="east") is None, what="label gone")


def test_reconcile_fetches_plans_and_echoes_the_request(
    apiserver: ApiServer, person: Path, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    with topoctl_run(apiserver, remote, tmp_path) as run:  # polls git once an hour
        eventually(lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820")
        pushed = remote.push({"sites/east.yaml": EAST.replace("51820", "51822")}, "no webhook")

        done = topoctl(person, "reconcile", "--wait", "--timeout", "30s")
        assert done.returncode == 0, done.stderr
        assert f"fetched and planned: revision {pushed}" in done.stdout
        assert annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51822"
        cm = apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)
        assert cm is not None
        requested = cm["metadata"]["annotations"][REQUESTED_AT]
        assert status(apiserver)["lastHandledReconcileAt"] == requested
        assert f"reconcile requested at {requested}: fetching and planning now" in run.output()
        shown = topoctl(person, "status", "--format", "json")
        assert json.loads(shown.stdout)["reconcileRequestedAt"] == requested

        # the controller's own writes of the ConfigMap keep the request (a replace)
        remote.push({"sites/east.yaml": EAST.replace("51820", "51823")}, "again")
        assert run.hook() == 202
        eventually(lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51823")
        eventually(lambda: status(apiserver).get("revision") != pushed, what="published")
        cm = apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)
        assert cm is not None and cm["metadata"]["annotations"][REQUESTED_AT] == requested


def test_a_person_without_the_role_is_told_what_is_missing(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    shipped = Shipped(apiserver)
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "nobody", "namespace": NAMESPACE},
        }
    )
    kubeconfig = shipped.kubeconfig(tmp_path / "nobody", apiserver.token(NAMESPACE, "nobody"))
    for verb in (("suspend",), ("resume",), ("reconcile",)):
        done = topoctl(kubeconfig, *verb)
        assert done.returncode == 1, (verb, done.stdout)
        assert "HTTP 403" in done.stderr and "this needs get and update on" in done.stderr
        assert "configmaps/topoctl-status in topoctl-system" in done.stderr


def test_the_commit_in_force_gets_one_status_per_state_and_a_forge_down_blocks_nothing(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    remote = Remote(tmp_path)
    first = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    token = tmp_path / "forge-token"
    token.write_text(TOKEN + "\n")
    with serving() as forge:
        forge.repos.add("acme/topology")
        flags = (
            "--commit-status", "github", "--commit-status-token-file", str(token),
            "--commit-status-repo", "acme/topology", "--commit-status-api-url", forge.url,
            "--commit-status-context", "topoctl/test",
        )  # fmt: skip

        def states(sha: str) -> list[str]:
            return [s["state"] for s in forge.statuses if s["sha"] == sha]

        with topoctl_run(apiserver, remote, tmp_path, "one", *flags) as run:
            eventually(lambda: states(first)[-1:] == ["success"], what="success")
            assert states(first) in (["pending", "success"], ["success"])

            bad = remote.push({"sites/east.yaml": BROKEN_EAST}, "break east")
            assert run.hook() == 202
            eventually(lambda: states(bad) == ["failure"], what="failure")
            (failed,) = [s for s in forge.statuses if s["sha"] == bad]
            assert "sites/east.yaml:9:7" in failed["description"]
            assert failed["context"] == "topoctl/test"

            forge.refuse_always["POST"] = 403
            fixed = remote.push({"sites/east.yaml": EAST.replace("51820", "51821")}, "fix")
            assert run.hook() == 202
            eventually(
                lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51821",
                what="converged while the forge refuses",
            )
            eventually(
                lambda: (sample(run, "topoctl_commit_status_failures_total") or 0) >= 1,
                what="the failure counted",
            )
            assert f"commit status github acme/topology {fixed[:12]}" in run.output()
            assert "not set" in run.output()
            assert states(fixed) == []
            assert states(first) in (["pending", "success"], ["success"])  # never again
    refused = [(e.method, e.path) for e in apiserver.log.entries if e.status in (401, 403)]
    assert not refused, refused
