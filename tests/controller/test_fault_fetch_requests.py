"""The fault matrix, a webhook flood on a standby: at most one fetch request is recorded
in the status ConfigMap per interval, the last is never lost, and the holder fetches
once for each it sees.

Both replicas' sides run on fake time against the double, through the real client as
the controller's service account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from reconciler.adapters.kubestatus import KubeStatusStore
from reconciler.controller.fetchrequests import INTERVAL, POLL, FetchRequests
from reconciler.usecases.statusmap import FETCH_KEY, STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.fault_support import drive
from tests.shipped_rbac import NAMESPACE, Shipped


class Replica:
    """One replica's fetch requests, in a thread, on the shared fake time."""

    def __init__(self, api: client.ApiClient, base: TimeBase, holder: bool) -> None:
        self.fetches = 0
        self.clock = FakeClock(base)
        self.requests = FetchRequests(
            StatusConfigMap(KubeStatusStore(api, NAMESPACE, STATUS_NAME)),
            self.fetch,
            lambda: holder,
            self.clock,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.requests.run, args=(self.stop,), daemon=True)

    def fetch(self) -> None:
        self.fetches += 1


@pytest.fixture
def replicas(shipped: Shipped, controller_api: client.ApiClient) -> Iterator[list[Replica]]:
    base = TimeBase()
    made = [Replica(controller_api, base, holder) for holder in (False, True)]
    for replica in made:
        replica.thread.start()
    yield made
    for replica in made:
        replica.stop.set()
        replica.thread.join(5.0)


def recorded(apiserver: ApiServer) -> str:
    found = apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)
    return "" if found is None else str(found.get("data", {}).get(FETCH_KEY, ""))


def test_a_flood_on_a_standby_costs_one_write_per_interval(
    shipped: Shipped, replicas: list[Replica]
) -> None:
    apiserver = shipped.apiserver
    standby, holder = replicas
    base = standby.clock.base
    seconds, every = 30.0, 0.25
    for _ in range(int(seconds / every)):  # 120 verified webhooks in 30 s
        standby.requests.requested()
        drive(base, standby.thread, every, step=every, sleepers=2)
    last_request = standby.clock.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    drive(base, standby.thread, INTERVAL + POLL, step=0.5, sleepers=2)
    writes = apiserver.log.count(resource="configmaps", verb="update") + apiserver.log.count(
        resource="configmaps", verb="create"
    )
    assert 1 <= writes <= seconds / INTERVAL + 2
    assert recorded(apiserver) >= last_request  # the last push is not lost
    # the holder fetched once for each request it saw recorded, never once a webhook
    assert 1 <= holder.fetches <= writes
    assert standby.fetches == 0
