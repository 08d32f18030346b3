"""Every right deploy/ grants is one the components use, and every request they send is
granted: the double's request log, read as the RBAC authorizer reads a request, against
the inventory of grants (tests/deploy/test_rbac.py).

One scenario drives every path that talks to the API, each as its own service account
under exactly deploy/base's RBAC: `topoctl run` (a process) converges a node, meets a
409 from another writer, refuses a broken commit; the controller's lifecycle (its own
wiring, a fake prober and clock) deletes a dead node; its Events repeat into a series in
both namespaces; the agent makes its pass on its own Node and waits for the next change.
A grant no request used fails the test, as does a request the RBAC refused.
"""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.adapters.kube import KubeBackend
from reconciler.controller.events import EventRecorder
from reconciler.model import keys
from reconciler.usecases.agent_pass import Agent
from reconciler.usecases.statusmap import STATUS_NAME
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    NODE_EXTERNAL_IP,
    UNINITIALIZED_TAINT,
    fixed_clock,
)
from tests.agent.conftest import agent_annotation as published_for_agent
from tests.agent.fake_routes import FakeRouteTable
from tests.apiserver import ApiServer, RequestInfo, make_node
from tests.apiserver.rbac import Attributes, request_attributes
from tests.controller.deployed import deployed_controller
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.gitrepos import BROKEN_EAST, CLUSTER, EAST, Remote
from tests.deploy.manifests import BASE, render
from tests.deploy.test_rbac import Grant, inventory
from tests.integration.test_run import ENDPOINT, annotation, eventually, topoctl_run
from tests.shipped_rbac import NAMESPACE, Shipped

AGENT_NODE = "agent-node-1"


def covers(grant: Grant, attrs: Attributes) -> bool:
    """Whether this grant (one inventory line) is what authorizes the request."""
    account, scope, group, resource, verb, name = grant
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    return (
        attrs.resource_request
        and attrs.user.name == f"system:serviceaccount:{NAMESPACE}:{account}"
        and (scope == "cluster" or attrs.namespace == scope)
        and (group, resource, verb) == (attrs.group, combined, attrs.verb)
        and (name is None or name == attrs.name)
    )


def controller_process(apiserver: ApiServer, tmp_path: Path) -> None:
    """`topoctl run`: converge, a conflicting writer (409, the node read again), a refused
    commit (its Event in the controller's namespace)."""
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    with topoctl_run(apiserver, remote, tmp_path) as run:
        eventually(lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820")

        def another_writer(_: RequestInfo) -> None:
            apiserver.mutate_node("east-gw-1", lambda n: n["metadata"]["labels"].update(x="1"))

        apiserver.faults.before(another_writer, method="PATCH", path=r"/nodes/east-gw-1$")
        remote.push({"sites/east.yaml": EAST.replace("51820", "51821")}, "port")
        assert run.hook() == 202
        eventually(lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51821")
        assert apiserver.log.count(verb="patch", resource="nodes", status=409) >= 1
        remote.push({"sites/east.yaml": BROKEN_EAST}, "broken")
        assert run.hook() == 202
        eventually(lambda: run.metric("topoctl_revision_refused_total") == 1.0)
        eventually(
            lambda: bool(apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)),
            what="the status ConfigMap",
        )


def controller_lifecycle_and_series(shipped: Shipped, tmp_path: Path) -> None:
    """The lifecycle deletes w-2; Events seen again join their series (a patch)."""
    with deployed_controller(shipped, tmp_path) as deployed:
        deployed.steps(5)
        assert deployed.controller.lifecycle.stats.deleted == ["w-2"]
        base = TimeBase()
        clock = FakeClock(base)
        for sink in (deployed.controller.node_events, deployed.controller.status_events.sink):
            events = EventRecorder(sink, clock)
            events.record("gw-1", "TopologyApplied", "once")
            events.record("gw-1", "TopologyApplied", "twice")
            base.advance(31)
            events.flush()
            assert events.stats.series_updates == 1


def agent_pass(shipped: Shipped) -> None:
    """The agent on its own Node: read it, write status and taint, wait for a change."""
    apiserver = shipped.apiserver
    apiserver.seed_node(
        make_node(
            AGENT_NODE,
            annotations={keys.TOPOCTL_AGENT: published_for_agent()},
            taints=[UNINITIALIZED_TAINT],
        )
    )
    api = shipped.api(shipped.agent_token(AGENT_NODE))
    try:
        backend = KubeBackend(api)
        routes = FakeRouteTable(sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP})
        agent = Agent(AGENT_NODE, backend, backend, routes, fixed_clock)
        report = agent.run_once()
        assert report.converged, report.condition
        assert report.node_writes == [
            "status: addresses, conditions",
            "taint: uninitialized removed",
        ]
        started = time.monotonic()
        assert not backend.wait_for_change(AGENT_NODE, agent.last_version, 1.0)
        assert time.monotonic() - started < 10
    finally:
        api.close()


def test_every_grant_is_used_and_every_request_is_granted(shipped: Shipped, tmp_path: Path) -> None:
    apiserver = shipped.apiserver
    controller_process(apiserver, tmp_path / "run")
    (tmp_path / "lifecycle").mkdir()
    controller_lifecycle_and_series(shipped, tmp_path / "lifecycle")
    agent_pass(shipped)

    grants = inventory(render(BASE))
    used: set[Grant] = set()
    requests = 0
    for entry in apiserver.log.entries:
        user = apiserver.access.user(entry.headers)
        if user is None:
            continue  # the test's own admin requests
        requests += 1
        attrs = request_attributes(user, entry.method, entry.path, entry.query)
        assert entry.status not in (401, 403), (entry.method, entry.path, entry.status)
        used |= {g for g in grants if covers(g, attrs)}
    assert requests > 30
    assert sorted(grants - used, key=str) == [], "granted, but no request uses it"

    # and the check sees a grant nothing uses: the `watch` on the status ConfigMap that
    # deploy/ used to grant (the holder reads it every few seconds; it never watches it)
    objects = render(BASE)
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "topoctl")
    watch = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["watch"]}
    role["rules"].append({**watch, "resourceNames": [STATUS_NAME]})
    assert inventory(objects) - used == {
        ("topoctl", NAMESPACE, "", "configmaps", "watch", STATUS_NAME)
    }
