"""The planner publishes nothing the agent would refuse for its size: one cap, both sides.

``reconciler.model.settings`` states the cap (bytes and routes); the planner makes a
site error of a node whose settings would pass it, and whatever it does publish the
agent reads whole.
"""

from __future__ import annotations

from reconciler.core.loading.load import SourceFile, load
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.settings import MAX_BYTES, MAX_ROUTES, AgentSettings
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology


def site_with_routes(count: int) -> Topology:
    routes = "".join(
        f"    - {{to: 10.100.{i // 256}.{i % 256}/32, dev: eth1}}\n" for i in range(count)
    )
    text = (
        "apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata:\n  name: sigma\nspec:\n"
        "  nodes:\n    - {name: sigma-1, endpoint: 203.0.113.1:51820}\n  routes:\n" + routes
    )
    result = load([SourceFile("sites/sigma.yaml", text.encode())], [])
    assert result.topology is not None, result.diagnostics
    return result.topology


NODE = NodeState("sigma-1", uid="u", resource_version="1", pod_cidr="10.244.1.0/24")


def test_more_routes_than_the_cap_in_fewer_bytes_is_a_site_error() -> None:
    plan = Planner(site_with_routes(MAX_ROUTES + 1), [NODE]).plan_all()

    (error,) = plan.errors
    assert f"or over {MAX_ROUTES} routes (the node agent refuses either)" in error
    assert f"sigma-1 ({MAX_ROUTES + 1} routes" not in error
    assert f"bytes, {MAX_ROUTES + 1} routes)" in error
    assert plan.nodes == ()


def test_what_the_planner_publishes_at_the_cap_the_agent_reads() -> None:
    plan = Planner(site_with_routes(MAX_ROUTES), [NODE]).plan_all()

    assert plan.errors == ()
    (change,) = [c for c in plan.nodes[0].changes if c.key == keys.TOPOCTL_AGENT]
    assert change.after is not None and len(change.after.encode()) <= MAX_BYTES
    settings, invalid = AgentSettings.from_annotation(change.after)
    assert invalid == () and len(settings.routes) == MAX_ROUTES
