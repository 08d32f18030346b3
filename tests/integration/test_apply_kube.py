"""``topoctl plan`` / ``apply`` / ``snapshot`` against the API-server double, through the CLI.

The double is seeded with examples/nodes.yaml and the plan is made from sites/, as a
person would run it. What each test expects is computed independently with the pure
core (``Planner.plan_all`` over the seeded nodes), and what topoctl did is read from the
double's request log and store: how many lists and patches, which keys each patch
carried, and whether every node ended up with all of its changes or none of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from msgspec.structs import replace

from reconciler.adapters import kube
from reconciler.adapters.files import read_directory
from reconciler.adapters.kube import RetryPolicy
from reconciler.adapters.patches import node_patch
from reconciler.cli import main
from reconciler.core.loading.load import load
from reconciler.core.planning.plan import Change, NodePlan, Plan
from reconciler.core.planning.planner import Planner
from reconciler.core.planning.project import node_write
from reconciler.model import captured, keys
from reconciler.model.state import NodeState, NodeWrite
from reconciler.model.topology import Topology
from reconciler.usecases.executor import apply_plan, replanner
from tests.apiserver import ApiServer
from tests.apiserver.faults import RequestInfo

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "sites"
EXAMPLE_NODES = REPO / "examples" / "nodes.yaml"
# A node the example plan writes annotations, labels and a taint on.
GATEWAY = "ams1-gw-1"
# A live node no site claims: topoctl must never write it.
UNCLAIMED = "build-runner-1"
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp")

Obj = dict[str, Any]


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def topology() -> Topology:
    files, notes = read_directory(SITES)
    result = load(files, notes)
    assert result.topology is not None, result.diagnostics
    return result.topology


@pytest.fixture
def cluster(apiserver: ApiServer) -> ApiServer:
    """The double holding the nodes of examples/nodes.yaml (fresh uids and versions),
    with Kilo's check-ins fresh: a plan of a live cluster judges them at this machine's
    clock, and on a live cluster Kilo renews them every 30 s."""
    now = str(int(time.time()))
    for item in yaml.safe_load(EXAMPLE_NODES.read_text())["items"]:
        for field in SERVER_SET:
            item["metadata"].pop(field, None)
        annotations = item["metadata"].get("annotations") or {}
        if keys.KILO_LAST_SEEN in annotations:
            annotations[keys.KILO_LAST_SEEN] = now
        apiserver.seed(item)
    return apiserver


@pytest.fixture
def plan_before(cluster: ApiServer, topology: Topology) -> Plan:
    """What the core says must change on the freshly seeded cluster."""
    plan = plan_of(cluster, topology)
    assert len(plan.writes) >= 5, "the example should need changes on several nodes"
    return plan


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[RetryPolicy]:
    """The CLI's backend with millisecond backoff, for faults that outlast the retries."""
    policy = RetryPolicy(attempts=3, initial=0.01, cap=0.05)
    monkeypatch.setattr(kube, "RetryPolicy", lambda: policy)
    yield policy


# -------------------------------------------------------------------- helpers


def topoctl(*args: str | Path, code: int = 0) -> Result:
    """Run the CLI in-process; fail with its output unless it exits with ``code``."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}{result.stderr}"
    return result


def plan_of(cluster: ApiServer, topology: Topology) -> Plan:
    return Planner(topology, [NodeState.from_object(n) for n in cluster.nodes()]).plan_all()


def by_name(cluster: ApiServer) -> dict[str, Obj]:
    return {n["metadata"]["name"]: n for n in cluster.nodes()}


def writes_logged(cluster: ApiServer) -> list[str]:
    return [f"{e.method} {e.path}" for e in cluster.log.writes()]


def live_value(state: NodeState, change: Change) -> str | None:
    """The value a change's key has on the node now, in the plan's notation."""
    if change.kind == "annotation":
        return state.annotations.get(change.key)
    if change.kind == "label":
        return state.labels.get(change.key)
    for taint in state.taints:
        if taint.ident == change.key:
            return f"{taint.key}={taint.value}:{taint.effect}" if taint.value else taint.ident
    return None


def progress(node_plan: NodePlan, obj: Mapping[str, Any]) -> str:
    """ "all" when every change of the plan holds on the node, "none" when none does."""
    state = NodeState.from_object(obj)
    values = [live_value(state, c) for c in node_plan.writes]
    if values == [c.after for c in node_plan.writes]:
        return "all"
    if values == [c.before for c in node_plan.writes]:
        return "none"
    return "partial: " + ", ".join(
        f"{c.kind} {c.key}={v!r}" for c, v in zip(node_plan.writes, values, strict=True)
    )


def progress_of(plan: Plan, cluster: ApiServer) -> dict[str, str]:
    live = by_name(cluster)
    return {n.node: progress(n, live[n.node]) for n in plan.writes}


def watch_every_patch_for_half_changed_nodes(cluster: ApiServer, plan: Plan) -> list[str]:
    """Before each PATCH is served, check that no node is half-changed; collect violations."""
    violations: list[str] = []

    def check(_: RequestInfo) -> None:
        for name, state in progress_of(plan, cluster).items():
            if state not in ("all", "none"):
                violations.append(f"{name}: {state}")

    cluster.faults.before(check, times=None, method="PATCH")
    return violations


def assert_converged(cluster: ApiServer, topology: Topology, plan: Plan) -> None:
    assert not plan_of(cluster, topology).writes, "a second plan still has changes"
    assert progress_of(plan, cluster) == {n.node: "all" for n in plan.writes}


# ------------------------------------------------------------ apply and plan


def test_apply_converges_and_a_converged_apply_writes_nothing(
    cluster: ApiServer, topology: Topology, plan_before: Plan, kubeconfig_path: Path
) -> None:
    topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--detailed-exitcode", code=2)
    unclaimed = cluster.node(UNCLAIMED)

    topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")

    assert_converged(cluster, topology, plan_before)
    assert cluster.node(UNCLAIMED) == unclaimed
    cluster.log.clear()
    result = topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--detailed-exitcode")
    assert "Plan: 0 nodes to change" in result.output
    second = topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")
    assert "Applied" not in second.output  # nothing to apply, nothing asked
    assert writes_logged(cluster) == []
    assert cluster.log.count(verb="list") == 2
    assert cluster.log.count(verb="get") == 0


@pytest.mark.parametrize("parallel", [1, 4, 8])
def test_apply_lists_once_and_patches_each_differing_node_once(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    parallel: int,
) -> None:
    result = topoctl(
        "apply", SITES, "--kubeconfig", kubeconfig_path, "--yes", "--parallel", str(parallel)
    )

    differing = sorted(n.node for n in plan_before.writes)
    patched = sorted(e.name or "" for e in cluster.log.filter(verb="patch"))
    assert patched == differing
    assert all(e.status == 200 for e in cluster.log.filter(verb="patch"))
    assert cluster.log.count(verb="list") == 1
    assert len(cluster.log.writes()) == len(differing)
    assert len(cluster.log) == 1 + len(differing)  # no reads besides the list
    assert f"Applied: {len(differing)} node(s) written, 0 failed." in result.output
    assert_converged(cluster, topology, plan_before)


def test_patches_carry_only_the_changed_keys_and_the_read_version(
    cluster: ApiServer, plan_before: Plan, kubeconfig_path: Path
) -> None:
    seeded = by_name(cluster)

    topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")

    sent = {e.name: e for e in cluster.log.filter(verb="patch")}
    for node_plan in plan_before.writes:
        request = sent[node_plan.node]
        body = request.body
        assert request.content_type == "application/merge-patch+json"
        assert request.subresource is None  # never the status: that is the agent's
        live = NodeState.from_object(seeded[node_plan.node])
        assert body == node_patch(node_write(live, node_plan))
        meta = body["metadata"]
        assert meta["resourceVersion"] == seeded[node_plan.node]["metadata"]["resourceVersion"]
        assert set(meta) <= {"resourceVersion", "annotations", "labels"}
        for kind, field in (("annotation", "annotations"), ("label", "labels")):
            changed = {c.key: c.after for c in node_plan.writes if c.kind == kind}
            assert meta.get(field, {}) == changed, f"{node_plan.node}: {field}"
        taints_change = any(c.kind == "taint" for c in node_plan.writes)
        assert ("spec" in body) == taints_change
        assert set(body) <= {"metadata", "spec"}
        if taints_change:
            assert set(body["spec"]) == {"taints"}


# ---------------------------------------------------------------- concurrency


OTHER_WRITERS: dict[str, tuple[Callable[[Obj], None], Callable[[Obj], bool]]] = {
    "annotation": (
        lambda n: n["metadata"]["annotations"].update({"example.com/maintenance": "2026-12-01"}),
        lambda n: n["metadata"]["annotations"]["example.com/maintenance"] == "2026-12-01",
    ),
    "kilo-heartbeat": (
        lambda n: n["metadata"]["annotations"].update({"kilo.squat.ai/last-seen": "1795683630"}),
        lambda n: n["metadata"]["annotations"]["kilo.squat.ai/last-seen"] == "1795683630",
    ),
    "label": (
        lambda n: n["metadata"]["labels"].update({"example.com/rack": "r7"}),
        lambda n: n["metadata"]["labels"]["example.com/rack"] == "r7",
    ),
    "taint": (
        lambda n: (
            n["spec"]
            .setdefault("taints", [])
            .append({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"})
        ),
        lambda n: (
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in n["spec"]["taints"]
        ),
    ),
}


@pytest.mark.parametrize("what", sorted(OTHER_WRITERS))
def test_a_writer_between_read_and_write_loses_nothing(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    what: str,
) -> None:
    """Kilo, kubelet or a person writes the node after topoctl listed it and before its
    patch lands: the patch is stale (409), topoctl re-reads and re-plans that node, and
    both writers' changes are on it afterwards."""
    change, survived = OTHER_WRITERS[what]

    def other_writer(_: RequestInfo) -> None:
        cluster.mutate_node(GATEWAY, change)

    cluster.faults.before(other_writer, times=1, method="PATCH", path=GATEWAY)

    result = topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")

    assert [e.status for e in cluster.log.filter(verb="patch", name=GATEWAY)] == [409, 200]
    assert cluster.log.count(verb="get", name=GATEWAY) == 1  # the re-read
    assert cluster.log.count(verb="patch") == len(plan_before.writes) + 1
    assert "1 conflict(s) resolved by re-reading the node" in result.output
    gateway = cluster.node(GATEWAY)
    assert gateway is not None and survived(gateway)
    assert_converged(cluster, topology, plan_before)


def test_a_node_deleted_between_read_and_write_is_reported(
    cluster: ApiServer, topology: Topology, plan_before: Plan, kubeconfig_path: Path
) -> None:
    cluster.faults.before(
        lambda _: cluster.delete("Node", GATEWAY), times=1, method="PATCH", path=GATEWAY
    )

    result = topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes", code=1)

    assert f"topoctl: {GATEWAY}: not applied: the node was deleted meanwhile" in result.stderr
    others = [n for n in plan_before.writes if n.node != GATEWAY]
    assert f"Applied: {len(others)} node(s) written, 1 failed." in result.output
    live = by_name(cluster)
    assert {n.node: progress(n, live[n.node]) for n in others} == {n.node: "all" for n in others}


def with_annotations(state: NodeState, **changes: str | None) -> NodeState:
    annotations = {**state.annotations, **changes}
    kept = {k: v for k, v in annotations.items() if v is not None}
    return replace(state, annotations=MappingProxyType(kept), resource_version="999999")


def without_label(state: NodeState, key: str) -> NodeState:
    labels = {k: v for k, v in state.labels.items() if k != key}
    return replace(state, labels=MappingProxyType(labels), resource_version="999999")


FRESH_VARIANTS: dict[str, Callable[[NodeState], NodeState]] = {
    "unchanged": lambda s: s,
    "foreign-annotation": lambda s: with_annotations(s, **{"example.com/owner": "ops"}),
    "kilo-heartbeat": lambda s: with_annotations(s, **{"kilo.squat.ai/last-seen": "1795683630"}),
    "leader-removed": lambda s: with_annotations(s, **{"kilo.squat.ai/leader": None}),
    "leader-claimed": lambda s: with_annotations(s, **{"kilo.squat.ai/leader": "true"}),
    # a pool selects Hetzner workers by this label: without it they leave their site
    "left-its-pool": lambda s: without_label(s, "node.kubernetes.io/instance-type"),
}


@pytest.mark.parametrize("variant", list(FRESH_VARIANTS))
def test_a_re_plan_after_a_conflict_is_what_a_full_plan_says(
    cluster: ApiServer, topology: Topology, variant: str
) -> None:
    """The 409 path re-plans one node; it must agree with planning the whole cluster."""
    states = [NodeState.from_object(n) for n in cluster.nodes()]
    planner = Planner(topology, states)  # one for the whole apply, as apply uses it
    replan = replanner(planner)
    for fresh in (FRESH_VARIANTS[variant](s) for s in states):
        others = [fresh if s.name == fresh.name else s for s in states]
        expected = {n.node: n for n in Planner(topology, others).plan_all().nodes}.get(fresh.name)
        assert replan(fresh) == expected, fresh.name
        assert planner.updated([fresh]).plan_node(fresh.name) == expected, fresh.name


# --------------------------------------------------------------------- faults


FAULTS: dict[str, Callable[[ApiServer], object]] = {
    "503-burst": lambda s: s.faults.fail(503, times=3, method="PATCH"),
    "500-then-502": lambda s: (
        s.faults.fail(500, times=1, method="PATCH"),
        s.faults.fail(502, times=1, method="PATCH"),
    ),
    "429-retry-after": lambda s: s.faults.throttle(retry_after=1, times=2, method="PATCH"),
    "slow-responses": lambda s: s.faults.latency(0.05, path="/nodes"),
    "connection-resets": lambda s: s.faults.reset(times=3, method="PATCH"),
    "answers-lost": lambda s: s.faults.reset(times=2, method="PATCH", after=True),
    "list-503-and-reset": lambda s: (
        s.faults.fail(503, times=1, method="GET"),
        s.faults.reset(times=1, method="GET"),
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_apply_converges_through_transient_faults_without_half_changed_nodes(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    fault: str,
) -> None:
    violations = watch_every_patch_for_half_changed_nodes(cluster, plan_before)
    FAULTS[fault](cluster)
    unclaimed = cluster.node(UNCLAIMED)

    topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")

    assert violations == []
    assert_converged(cluster, topology, plan_before)
    assert cluster.node(UNCLAIMED) == unclaimed
    # one successful patch per node: retries repeat a write, they never split it
    accepted = [e.name or "" for e in cluster.log.filter(verb="patch") if e.status == 200]
    lost = [e.name or "" for e in cluster.log.filter(verb="patch") if e.status == 0]
    expected = sorted(n.node for n in plan_before.writes)
    if fault == "answers-lost":  # applied, answer lost, retried: 409, re-read, nothing left
        assert sorted(accepted + lost) == expected
    else:
        assert sorted(accepted) == expected


def test_429_during_apply_waits_the_retry_after(
    cluster: ApiServer, plan_before: Plan, kubeconfig_path: Path
) -> None:
    cluster.faults.throttle(retry_after=1, times=1, method="PATCH", path=GATEWAY)

    topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes")

    throttled, accepted = cluster.log.filter(verb="patch", name=GATEWAY)
    assert (throttled.status, accepted.status) == (429, 200)
    assert accepted.timestamp - throttled.timestamp >= 1.0


def test_a_node_whose_writes_keep_failing_is_left_untouched(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    fast_retries: RetryPolicy,
) -> None:
    cluster.faults.fail(503, times=None, method="PATCH", path=GATEWAY, message="etcd is down")
    before = cluster.node(GATEWAY)

    result = topoctl("apply", SITES, "--kubeconfig", kubeconfig_path, "--yes", code=1)

    assert result.stderr == (
        f"topoctl: {GATEWAY}: not applied: patch node {GATEWAY}: HTTP 503: etcd is down "
        f"(gave up after {fast_retries.attempts} attempts)\n"
    )
    assert "Traceback" not in result.output + result.stderr
    assert cluster.node(GATEWAY) == before
    assert cluster.log.count(verb="patch", name=GATEWAY) == fast_retries.attempts
    states = progress_of(plan_before, cluster)
    assert states.pop(GATEWAY) == "none"
    assert set(states.values()) == {"all"}
    assert f"Applied: {len(states)} node(s) written, 1 failed." in result.output


# ---------------------------------------------------------------- saved plans


def test_a_saved_plan_applies_exactly_while_its_nodes_have_not_moved(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    tmp_path: Path,
) -> None:
    saved = tmp_path / "plan.json"
    topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--out", saved)
    # Kilo's heartbeat on a node the plan does not write does not make the plan stale
    cluster.mutate_node(
        UNCLAIMED, lambda n: n["metadata"]["annotations"].update({"kilo.squat.ai/last-seen": "1"})
    )
    cluster.log.clear()

    topoctl("apply", saved, "--yes")  # the cluster is the one the plan recorded

    assert cluster.log.count(verb="patch") == len(plan_before.writes)
    assert_converged(cluster, topology, plan_before)


def test_a_saved_plan_whose_answer_was_lost_is_not_reported_as_failed(
    cluster: ApiServer,
    topology: Topology,
    plan_before: Plan,
    kubeconfig_path: Path,
    tmp_path: Path,
) -> None:
    """The patch lands but its answer is lost; the retry meets the version the patch itself
    bumped (409). The node holds exactly what the plan says, so that is a success."""
    saved = tmp_path / "plan.json"
    topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--out", saved)
    cluster.faults.reset(method="PATCH", path=GATEWAY, after=True)

    topoctl("apply", saved, "--yes")

    assert [e.status for e in cluster.log.filter(verb="patch", name=GATEWAY)] == [0, 409]
    assert_converged(cluster, topology, plan_before)


def test_a_saved_plan_refuses_a_node_another_writer_changed_meanwhile(
    cluster: ApiServer, plan_before: Plan, kubeconfig_path: Path, tmp_path: Path
) -> None:
    """A saved plan is applied exactly: a write to the node between apply's check and its
    patch fails that node (and only it), it is never re-planned."""
    saved = tmp_path / "plan.json"
    topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--out", saved)

    def other_writer(_: RequestInfo) -> None:
        cluster.mutate_node(GATEWAY, OTHER_WRITERS["label"][0])

    cluster.faults.before(other_writer, times=1, method="PATCH", path=GATEWAY)
    before = cluster.node(GATEWAY)

    result = topoctl("apply", saved, "--yes", code=1)

    assert f"topoctl: {GATEWAY}: not applied: conflict" in result.stderr
    assert "plan again" in result.stderr
    gateway = cluster.node(GATEWAY)
    assert gateway is not None and before is not None
    assert gateway["metadata"]["annotations"] == before["metadata"]["annotations"]
    states = progress_of(plan_before, cluster)
    assert states.pop(GATEWAY) == "none"
    assert set(states.values()) == {"all"}


def kilo_heartbeat(cluster: ApiServer) -> None:
    cluster.mutate_node(
        GATEWAY, lambda n: n["metadata"]["annotations"].update({"kilo.squat.ai/last-seen": "2"})
    )


def node_joined(cluster: ApiServer) -> None:
    cluster.seed_node("fsn1-worker-new", labels={"node.kubernetes.io/instance-type": "cx32"})


def node_replaced(cluster: ApiServer) -> None:
    old = cluster.node(GATEWAY)
    assert old is not None
    cluster.delete("Node", GATEWAY)
    for field in SERVER_SET:
        old["metadata"].pop(field)
    cluster.seed({"kind": "Node", "apiVersion": "v1", **old})


@pytest.mark.parametrize(
    ("move", "why"),
    [
        (kilo_heartbeat, f"{GATEWAY} moved (resourceVersion"),
        (node_joined, "fsn1-worker-new is new"),
        (node_replaced, f"{GATEWAY} was replaced"),
    ],
    ids=["node-written", "node-joined", "node-replaced"],
)
def test_a_saved_plan_is_refused_once_the_cluster_moved(
    cluster: ApiServer,
    kubeconfig_path: Path,
    tmp_path: Path,
    move: Callable[[ApiServer], None],
    why: str,
) -> None:
    saved = tmp_path / "plan.json"
    topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--out", saved)
    move(cluster)
    moved = by_name(cluster)
    cluster.log.clear()

    result = topoctl("apply", saved, "--kubeconfig", kubeconfig_path, "--yes", code=1)

    assert result.stderr.startswith(f"topoctl: error: {saved}: the cluster changed since")
    assert why in result.stderr
    assert "run plan again" in result.stderr
    assert writes_logged(cluster) == []
    assert by_name(cluster) == moved


# ------------------------------------------------------------------- snapshot


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_snapshot_plans_exactly_like_the_live_cluster(
    cluster: ApiServer, kubeconfig_path: Path, tmp_path: Path, fmt: str
) -> None:
    snapshot = tmp_path / f"nodes.{fmt}"
    before = int(time.time())
    snapshot.write_text(
        topoctl("snapshot", "--kubeconfig", kubeconfig_path, "--format", fmt).stdout
    )
    exported = yaml.safe_load(snapshot.read_text())  # YAML is a superset of JSON
    assert exported["kind"] == "List"
    assert {(n["apiVersion"], n["kind"]) for n in exported["items"]} == {("v1", "Node")}
    assert [n["metadata"]["name"] for n in exported["items"]] == sorted(by_name(cluster))
    taken = captured.parse(exported["metadata"]["annotations"][keys.TOPOCTL_CAPTURED_AT])
    assert before <= taken <= int(time.time())
    live_out, offline_out = tmp_path / "live.json", tmp_path / "offline.json"

    live = topoctl("plan", SITES, "--kubeconfig", kubeconfig_path, "--out", live_out)
    offline = topoctl("plan", SITES, "--cluster", snapshot, "--out", offline_out)

    # The same plan; only the time Kilo's freshness was judged at says where it came from.
    assert "(the clock of the machine that planned)" in live.stdout.splitlines()[1]
    assert offline.stdout.splitlines()[1] == (
        f"now: {captured.render(taken)} (the snapshot's capture time)"
    )
    assert without_now(offline.stdout) == without_now(live.stdout)
    # the saved plans agree too, down to the uid and resourceVersion each node was read at
    saved = [json.loads(p.read_text())["plan"] for p in (offline_out, live_out)]
    assert saved[0].pop("now") == {"at": taken, "source": "captured"}
    assert saved[1].pop("now")["source"] == "clock"
    assert saved[0] == saved[1]
    as_json = [
        json.loads(topoctl("plan", SITES, src, path, "--format", "json").stdout)
        for src, path in (("--kubeconfig", kubeconfig_path), ("--cluster", snapshot))
    ]
    assert as_json[1].pop("now")["source"] == "captured"
    assert as_json[0].pop("now")["source"] == "clock"
    assert as_json[0] == as_json[1]
    assert writes_logged(cluster) == []


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_kubectl_takes_a_snapshot_with_its_capture_time(
    cluster: ApiServer, kubeconfig_path: Path, tmp_path: Path, fmt: str, kubectl: Any
) -> None:
    """The capture time sits on the List itself, which kubectl unpacks into its items
    and never sends (its schema validation reads a List's items only: the double serves
    no OpenAPI schema to validate Nodes against, so validation is off here)."""
    snapshot = tmp_path / f"nodes.{fmt}"
    snapshot.write_text(
        topoctl("snapshot", "--kubeconfig", kubeconfig_path, "--format", fmt).stdout
    )
    assert keys.TOPOCTL_CAPTURED_AT in snapshot.read_text()
    done = kubectl(
        "create", "-f", str(snapshot), "--dry-run=client", "-o", "name", "--validate=false"
    )
    assert done.stdout.split() == [f"node/{name}" for name in sorted(by_name(cluster))]


def without_now(text: str) -> list[str]:
    """A text plan but for the line that says when Kilo's freshness was judged."""
    return [line for line in text.splitlines() if not line.startswith("now: ")]


@pytest.mark.parametrize(
    ("writer", "replans"),
    [
        (lambda c: c.mutate_node(GATEWAY, _check_in), []),
        (lambda c: c.mutate_node(GATEWAY, _person_labels), [GATEWAY]),
    ],
    ids=["kilo-heartbeat", "a-person-labels-the-node"],
)
def test_a_conflict_re_plans_only_when_the_planners_inputs_moved(
    cluster: ApiServer,
    topology: Topology,
    kubeconfig_path: Path,
    writer: Callable[[ApiServer], None],
    replans: list[str],
) -> None:
    """A heartbeat between read and write changes nothing the planner reads: the same
    write goes again under the new resourceVersion, without re-planning the site."""
    backend = kube.KubeBackend.connect(kubeconfig_path)
    planner = Planner(topology, backend.list_nodes())
    plan = planner.plan_all()
    cluster.faults.before(lambda _: writer(cluster), times=1, method="PATCH", path=GATEWAY)
    seen: list[str] = []
    inner = replanner(planner)

    def counting(fresh: NodeState) -> NodePlan | None:
        seen.append(fresh.name)
        return inner(fresh)

    report = apply_plan(plan, planner.nodes, backend, backend, counting, parallel=1)
    backend.close()

    assert report.ok and report.conflicts_retried == 1
    assert seen == replans
    assert [e.status for e in cluster.log.filter(verb="patch", name=GATEWAY)] == [409, 200]
    assert_converged(cluster, topology, plan)


def _seen(node: Obj, later: int) -> None:
    annotations = node["metadata"]["annotations"]
    annotations["kilo.squat.ai/last-seen"] = str(
        int(annotations["kilo.squat.ai/last-seen"]) + later
    )


def _check_in(node: Obj) -> None:
    _seen(node, 30)  # Kilo's regular check-in


def _person_labels(node: Obj) -> None:
    node["metadata"]["labels"]["example.com/owner"] = "ops"


def test_a_conflict_whose_re_plan_writes_nothing_reports_the_node_re_read(
    cluster: ApiServer, topology: Topology, kubeconfig_path: Path
) -> None:
    """Another writer got there first with the very change planned: the 409's re-plan
    writes nothing, and the report carries the node as re-read, so a caller whose reads
    are stale (a controller whose lists fail) plans from it next instead of sending the
    same stale write again."""
    backend = kube.KubeBackend.connect(kubeconfig_path)
    planner = Planner(topology, backend.list_nodes())
    plan = planner.plan_all()
    (node_plan,) = [n for n in plan.writes if n.node == GATEWAY]
    write = node_write(planner.nodes[GATEWAY], node_plan)

    def first(_: RequestInfo) -> None:
        cluster.mutate_node(GATEWAY, lambda n: _written(n, write))

    cluster.faults.before(first, times=1, method="PATCH", path=GATEWAY)
    report = apply_plan(plan, planner.nodes, backend, backend, replanner(planner), parallel=1)
    backend.close()
    assert report.ok and report.conflicts_retried == 1
    assert GATEWAY in report.unchanged and GATEWAY not in report.states
    reread = report.reread[GATEWAY]
    assert int(reread.resource_version) > int(planner.nodes[GATEWAY].resource_version)
    again = planner.updated([reread]).plan_node(GATEWAY)
    assert again is not None and not again.writes
    assert [e.status for e in cluster.log.filter(verb="patch", name=GATEWAY)] == [409]


def _written(node: Obj, write: NodeWrite) -> None:
    """``write`` applied as another writer would have."""
    meta = node["metadata"]
    for field, values in (("annotations", write.annotations), ("labels", write.labels)):
        target = meta.setdefault(field, {})
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    if write.taints is not None:
        node.setdefault("spec", {})["taints"] = [
            {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
            for t in write.taints
        ]


def test_a_node_back_after_a_silence_is_re_planned(
    cluster: ApiServer, topology: Topology, kubeconfig_path: Path
) -> None:
    """A check-in after more than Kilo's minute of silence may move the leader: the 409
    it causes is re-planned, not resent."""
    backend = kube.KubeBackend.connect(kubeconfig_path)
    planner = Planner(topology, backend.list_nodes())
    plan = planner.plan_all()

    def back(_: RequestInfo) -> None:
        cluster.mutate_node(GATEWAY, lambda n: _seen(n, 600))

    cluster.faults.before(back, times=1, method="PATCH", path=GATEWAY)
    seen: list[str] = []
    inner = replanner(planner)

    def counting(fresh: NodeState) -> NodePlan | None:
        seen.append(fresh.name)
        return inner(fresh)

    report = apply_plan(plan, planner.nodes, backend, backend, counting, parallel=1)
    backend.close()
    assert report.ok and seen == [GATEWAY]
