"""`topoctl run`'s own wiring (controller.wiring.Controller) as the controller's service account, on
the double holding deploy/'s RBAC, for the lifecycle: only what a test cannot have for
real is swapped: the probes (w-2 is silent), the clock (an hour after w-2 went NotReady),
the revision in force and its planned sites (fsn1: gw-1 and the pool w-1..w-5), and the
lease (held).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.adapters.kube import KubeBackend
from reconciler.controller.wiring import Controller, RunSettings
from reconciler.model.state import NodeState
from reconciler.usecases.lifecycle import Lifecycle
from tests.apiserver import ApiServer
from tests.core.test_lifecycle_plan import FakeClock, FakeProber, fsn1
from tests.lifecycle_support import planned_view
from tests.shipped_rbac import NAMESPACE, Shipped

DEAD = "w-2"
DEAD_IP = "10.0.1.2"


@dataclass
class Deployed:
    """The double, the wired controller and the clock its lifecycle reads."""

    apiserver: ApiServer
    controller: Controller
    clock: FakeClock

    def steps(self, count: int) -> None:
        """`count` lifecycle passes, 20 s apart."""
        for i in range(count):
            if i:
                self.clock.at += timedelta(seconds=20)
            self.controller.lifecycle.step()


@contextmanager
def deployed_controller(shipped: Shipped, workdir: Path) -> Iterator[Deployed]:
    """The wired controller, with gw-1 and w-1..w-5 stored (w-2's kubelet silent)."""
    apiserver = shipped.apiserver
    apiserver.seed_node("gw-1", internal_ip="10.0.0.1", pod_cidr="10.244.0.0/24")
    for i in range(1, 6):
        ready = None if f"w-{i}" == DEAD else True
        apiserver.seed_node(
            f"w-{i}", internal_ip=f"10.0.1.{i}", pod_cidr="10.244.1.0/24", ready=ready
        )
    kubeconfig = shipped.kubeconfig(workdir / "controller-kubeconfig", shipped.controller_token())
    settings = RunSettings(
        source_dir=workdir,
        kubeconfig=kubeconfig,
        lease_namespace=NAMESPACE,
        identity="topoctl-0",
        listen="127.0.0.1:0",
    )
    backend = KubeBackend.connect(kubeconfig)
    controller = Controller(settings, backend)
    controller.http.start()  # bound already: started, so that it can be stopped
    clock = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    lifecycle = controller.lifecycle
    eyes = replace(lifecycle.lifecycle.eyes, prober=FakeProber(clock, {DEAD_IP}), clock=clock)
    lifecycle.lifecycle = Lifecycle(eyes)
    lifecycle.deletion = replace(lifecycle.deletion, clock=clock, may_write=lambda: True)
    lifecycle.may_write = lambda: True
    controller.gate.time_left = lambda: 15.0  # the lease just renewed, at every write
    topology = fsn1()
    lifecycle.view = lambda: planned_view(
        topology, [NodeState.from_object(n) for n in apiserver.nodes()]
    )
    try:
        yield Deployed(apiserver, controller, clock)
    finally:
        controller.http.stop()
        backend.close()
