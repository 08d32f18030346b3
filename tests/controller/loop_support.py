"""A running reconcile loop against the API-server double, for the controller's tests.

The loop gets the real client over HTTP (KubeBackend with millisecond backoff, the
KubeWatcher) holding the controller's own service-account token, on a double that
enforces the RBAC deploy/base ships; the example nodes and sites/; and a clock whose wall
time the test sets (Kilo's ``last-seen`` freshness is judged against it) while waits
stay short and real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reconciler.adapters.files import read_directory
from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.controller.informer import InformerSettings
from reconciler.controller.loop import LoopSettings, ReconcileLoop
from reconciler.controller.plans import Revision
from reconciler.core.loading.load import load
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.state import NodeState
from reconciler.model.suspension import Hold
from reconciler.model.topology import Topology
from reconciler.ports import Observer
from tests import shipped_rbac
from tests.apiserver import ApiServer
from tests.shipped_rbac import CONTROLLER, NAMESPACE, Shipped

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_NODES = REPO / "examples" / "nodes.yaml"
EXAMPLE_SEEN = 1795683600  # the examples' kilo.squat.ai/last-seen
SHA = "0123456789abcdef0123456789abcdef01234567"
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp")


class WallClock:
    """Real monotonic time and waits; a wall clock the test sets and moves."""

    def __init__(self, wall: float) -> None:
        self._wall = wall
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        with self._lock:
            return datetime.fromtimestamp(self._wall, UTC)

    def wait(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(max(0.0, min(seconds, 0.05)))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds

    @property
    def now(self) -> int:
        with self._lock:
            return int(self._wall)


def example_topology() -> Topology:
    files, notes = read_directory(REPO / "sites")
    result = load(files, notes)
    assert result.topology is not None, result.diagnostics
    return result.topology


def seed_examples(apiserver: ApiServer, last_seen: int | None = None) -> None:
    """The nodes of examples/nodes.yaml; with ``last_seen``, Kilo's check-ins made then
    (a command reading a live cluster judges them at this machine's clock)."""
    for item in yaml.safe_load(EXAMPLE_NODES.read_text())["items"]:
        for key in SERVER_SET:
            item["metadata"].pop(key, None)
        annotations = item["metadata"].get("annotations") or {}
        if last_seen is not None and keys.KILO_LAST_SEEN in annotations:
            annotations[keys.KILO_LAST_SEEN] = str(last_seen)
        apiserver.seed(item)


def live(apiserver: ApiServer) -> list[NodeState]:
    return [NodeState.from_object(n) for n in apiserver.nodes()]


def pending_writes(apiserver: ApiServer, topology: Topology, now: int) -> list[str]:
    """The nodes a fresh plan of the double's nodes would still write."""
    plan = Planner(topology, live(apiserver), now).plan_all()
    return [n.node for n in plan.writes]


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll until ``predicate()`` holds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def annotate(apiserver: ApiServer, name: str, **values: str | None) -> None:
    """Change annotations as another writer would (``None`` removes)."""

    def change(obj: dict[str, Any]) -> None:
        annotations = obj["metadata"].setdefault("annotations", {})
        for key, value in values.items():
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value

    apiserver.mutate_node(name, change)


def heartbeat(apiserver: ApiServer, now: int) -> None:
    """Kilo's check-in on every node: ``last-seen`` rewritten."""
    for node in apiserver.nodes():
        annotate(apiserver, node["metadata"]["name"], **{"kilo.squat.ai/last-seen": str(now)})


def as_shipped(apiserver: ApiServer) -> Shipped:
    """The double with deploy/base's RBAC (loaded now if it is not there yet)."""
    if apiserver.get("ServiceAccount", CONTROLLER, NAMESPACE) is None:
        return shipped_rbac.load(apiserver)
    return Shipped(apiserver)


@contextmanager
def running_loop(
    apiserver: ApiServer,
    topology: Topology,
    clock: WallClock,
    *,
    may_write: Callable[[], bool] = lambda: True,
    dry_run: bool = False,
    observer: Observer | None = None,
    resync: float = 3600.0,
    suspended: Callable[[str], Hold | None] = lambda site: None,
    on_handled: Callable[[str], None] | None = None,
) -> Iterator[ReconcileLoop]:
    """A loop running in a thread on the double, as the controller's service account
    (deploy/base's RBAC is loaded unless it is there); stopped (and joined) at the end."""
    shipped = as_shipped(apiserver)
    api = shipped.api(shipped.controller_token())
    backend = KubeBackend(api, RetryPolicy(attempts=8, initial=0.01, cap=0.05, max_delay=10.0))
    settings = LoopSettings(
        resync=resync,
        dry_run=dry_run,
        idle=0.05,
        retry_base=0.01,
        retry_cap=0.2,
        informer=InformerSettings(watch_timeout=5.0, backoff_base=0.01, backoff_cap=0.1),
    )
    loop = ReconcileLoop(
        KubeWatcher(backend),
        backend,
        may_write=may_write,
        clock=clock,
        settings=settings,
        observer=observer,
        suspended=suspended,
        on_handled=on_handled,
    )
    loop.set_revision(Revision(SHA, topology))
    thread = threading.Thread(target=loop.run, name="loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.request_stop()
        thread.join(timeout=10.0)
        api.close()
        assert not thread.is_alive(), "the loop did not stop"
