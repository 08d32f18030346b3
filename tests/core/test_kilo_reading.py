"""What Kilo makes of the six keys a user sets (``core/kilo/node.py``), and the plan's
"same for Kilo" marker that rests on it.

The table holds what Kilo's own code reads for each value (``kilo-topo`` printed it); the
cross-check at the end feeds the same values, and more, to ``kilo-topo`` itself when
``KILO_TOPO`` names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.kilo.node import (
    NO_INTERNAL_IP,
    kilo_allowed_ips,
    kilo_endpoint,
    kilo_internal_ip,
    kilo_keepalive,
    read_user_key,
)
from reconciler.core.planning.diff import diff_node
from reconciler.core.rendering import plans
from reconciler.core.rendering.lines import change_line
from reconciler.model import keys
from tests.core.test_plan import SEEN, changes, desired, state

KEEPALIVES = {
    "25": 25,
    "025": 25,
    "+25": 25,
    "-5": -5,
    "70000": 70000,
    "20s": 0,
    " 25": 0,
    "25 ": 0,
    "2_5": 0,
    "": 0,
    "0": 0,
    "٢٥": 0,  # Arabic-Indic digits: Python's int() takes them, Go does not
    "99999999999999999999": -1,  # past int64: ParseInt's bound, times 1e9, wraps
    "9223372037": -9223372036,  # the int64 nanoseconds wrap
    "-9223372037": 9223372036,
}
ENDPOINTS: dict[str, str | None] = {
    "198.51.100.1:51820": "198.51.100.1:51820",
    "198.51.100.1": None,  # no port
    "198.51.100.1:051820": "198.51.100.1:51820",
    "198.51.100.1:0": None,
    "198.51.100.1:65536": None,
    "127.0.0.1:51820": "127.0.0.1:51820",  # Kilo takes what no location can reach
    "[::1]:51820": "[::1]:51820",
    "0.0.0.0:51820": "0.0.0.0:51820",
    "169.254.1.1:51820": "169.254.1.1:51820",
    "[2001:DB8::1]:51820": "[2001:db8::1]:51820",
    "[::ffff:1.2.3.4]:51820": "1.2.3.4:51820",
    "::1:51820": None,
    "gw.example.com:51820": "gw.example.com:51820",
    "GW.example.com:51820": None,
    "example.com.:51820": None,
    "a_b.com:51820": None,
    "1.2.3:51820": "1.2.3:51820",  # a DNS name to Kilo
    "198.51.100.1:51820 ": None,
    "[fe80::1%eth0]:51820": None,
}
INTERNAL_IPS: dict[str, str | None] = {
    "10.9.0.2/32": "10.9.0.2/32",
    "10.9.0.2/24": "10.9.0.2/24",  # the prefix is kept: Kilo reads an interface address
    "10.9.0.1": None,  # bare: ignored
    "-": NO_INTERNAL_IP,
    "": NO_INTERNAL_IP,
    "10.9.0.1/255.255.255.0": None,
    "2001:DB8::2/128": "2001:db8::2/128",
    " 10.9.0.1/32": None,
}
ALLOWED = {
    "192.168.1.0/24": ("192.168.1.0/24",),
    "192.168.1.0/24,192.168.2.0/24": ("192.168.1.0/24", "192.168.2.0/24"),
    "192.168.1.0/24, 192.168.2.0/24": ("192.168.1.0/24",),  # no trimming
    "192.168.3.1/24": ("192.168.3.1/24",),  # host bits kept
    "192.168.4.1,bad,192.168.5.0/24,": ("192.168.5.0/24",),
    "": (),
}


@pytest.mark.parametrize(("value", "seconds"), KEEPALIVES.items())
def test_keepalive_is_go_parseint_and_zero_when_it_fails(value: str, seconds: int) -> None:
    assert kilo_keepalive(value) == seconds


@pytest.mark.parametrize(("value", "read"), ENDPOINTS.items())
def test_force_endpoint_as_kilo_parses_it(value: str, read: str | None) -> None:
    endpoint = kilo_endpoint(value)
    assert (str(endpoint) if endpoint is not None else None) == read


@pytest.mark.parametrize(("value", "read"), INTERNAL_IPS.items())
def test_force_internal_ip_as_kilo_parses_it(value: str, read: str | None) -> None:
    assert kilo_internal_ip(value) == read


@pytest.mark.parametrize(("value", "read"), ALLOWED.items())
def test_allowed_location_ips_as_kilo_splits_them(value: str, read: tuple[str, ...]) -> None:
    assert kilo_allowed_ips(value) == read


def test_location_falls_back_to_the_region_label_only_when_the_key_is_absent() -> None:
    labels = {"topology.kubernetes.io/region": "eu-central"}
    assert read_user_key(keys.KILO_LOCATION, None, labels) == "eu-central"
    assert read_user_key(keys.KILO_LOCATION, "", labels) == ""
    assert read_user_key(keys.KILO_LEADER, "false", {}) is True
    assert read_user_key(keys.KILO_LEADER, None, {}) is False


# --- the plan's marker ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "kilo_keys", "key", "same"),
    [
        ({keys.KILO_LEADER: "false"}, {keys.KILO_LEADER: "true"}, keys.KILO_LEADER, True),
        ({keys.KILO_LEADER: ""}, {keys.KILO_LEADER: "true"}, keys.KILO_LEADER, True),
        ({keys.KILO_LEADER: "true"}, {}, keys.KILO_LEADER, False),  # stops asking to lead
        (
            {keys.KILO_PERSISTENT_KEEPALIVE: "025"},
            {keys.KILO_PERSISTENT_KEEPALIVE: "25"},
            keys.KILO_PERSISTENT_KEEPALIVE,
            True,
        ),
        ({keys.KILO_PERSISTENT_KEEPALIVE: "20s"}, {}, keys.KILO_PERSISTENT_KEEPALIVE, True),
        (
            {keys.KILO_PERSISTENT_KEEPALIVE: "20s"},
            {keys.KILO_PERSISTENT_KEEPALIVE: "20"},
            keys.KILO_PERSISTENT_KEEPALIVE,
            False,  # 0 -> 20: keepalive turns on
        ),
        (
            {keys.KILO_FORCE_ENDPOINT: "[2001:DB8::1]:51820"},
            {keys.KILO_FORCE_ENDPOINT: "[2001:db8::1]:51820"},
            keys.KILO_FORCE_ENDPOINT,
            True,
        ),
        ({keys.KILO_FORCE_ENDPOINT: "198.51.100.1"}, {}, keys.KILO_FORCE_ENDPOINT, True),
        (
            {keys.KILO_ALLOWED_LOCATION_IPS: "2001:DB8::/32"},
            {keys.KILO_ALLOWED_LOCATION_IPS: "2001:db8::/32"},
            keys.KILO_ALLOWED_LOCATION_IPS,
            True,
        ),
    ],
)
def test_a_rewrite_kilo_reads_the_same_way_is_marked(
    live: dict[str, str], kilo_keys: dict[str, str], key: str, same: bool
) -> None:
    plan = diff_node(
        desired(kilo_keys={keys.KILO_LOCATION: "s", **kilo_keys}),
        state(annotations={keys.KILO_LOCATION: "s", **live}),
    )
    change = changes(plan)[("annotation", key)]
    assert change.same_for_kilo is same
    assert change_line(change).endswith("(same for Kilo)") is same


def test_location_set_where_the_region_label_already_says_it_is_the_same_for_kilo() -> None:
    region = {"topology.kubernetes.io/region": "s"}
    plan = diff_node(desired(), state(labels=region))
    assert changes(plan)[("annotation", keys.KILO_LOCATION)].same_for_kilo
    elsewhere = diff_node(desired(), state(labels={"topology.kubernetes.io/region": "t"}))
    assert not changes(elsewhere)[("annotation", keys.KILO_LOCATION)].same_for_kilo


def test_plan_summary_counts_the_keys_that_are_the_same_for_kilo() -> None:
    from reconciler.core.planning.planner import Planner
    from tests.core.test_plan import node_object, site, topology

    topo = topology(site("s", nodes=[{"name": "n1"}], leader=["n1"]))
    node = node_object("n1", annotations={keys.KILO_LOCATION: "s", keys.KILO_LEADER: "false"})
    plan = Planner(topo, [state("n1", **_kwargs(node))]).plan_all()
    assert "1 of them the same for Kilo" in plans.summary_line(plan)
    data = json.loads(plans.as_json(plan))
    leader = next(c for c in data["changes"] if c["key"] == keys.KILO_LEADER)
    assert leader["same_for_kilo"] is True


def _kwargs(obj: dict[str, Any]) -> dict[str, Any]:
    return {"annotations": obj["metadata"]["annotations"]}


# --- against Kilo's own code ---------------------------------------------------------

KILO_TOPO = os.environ.get("KILO_TOPO", "")
needs_kilo_topo = pytest.mark.skipif(
    not (KILO_TOPO and Path(KILO_TOPO).is_file() and os.access(KILO_TOPO, os.X_OK)),
    reason="KILO_TOPO does not name the kilo-topo program (Kilo's own code); .ci/run sets it",
)
KILO_ENDPOINT, KILO_INTERNAL = "203.0.113.9:51820", "10.8.0.9/24"


def kilo_reads(key: str, values: list[str]) -> list[dict[str, Any]]:
    """kilo-topo's reading of one node per value, each carrying ``key: value``."""
    items = []
    for i, value in enumerate(values):
        annotations = {
            keys.KILO_KEY: "c2NlbmFyaW8gdGVzdCBrZXkgLSBub3QgcmVhbCEhISE=",
            keys.KILO_LAST_SEEN: str(SEEN),
            keys.KILO_ENDPOINT: KILO_ENDPOINT,
            keys.KILO_INTERNAL_IP: KILO_INTERNAL,
            key: value,
        }
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"n{i:03d}", "annotations": annotations},
                "spec": {"podCIDR": f"10.244.{i}.0/24"},
            }
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, handle)
        handle.flush()
        done = subprocess.run(
            [KILO_TOPO, "--compact", "--last-seen", "fresh", handle.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    by_name = {n["name"]: n for n in json.loads(done.stdout)["nodes"]}
    return [by_name[f"n{i:03d}"] for i in range(len(values))]


def shown(key: str, value: str) -> Any:
    """How kilo-topo prints the value topoctl says Kilo reads."""
    read = read_user_key(key, value, {})
    if key == keys.KILO_FORCE_ENDPOINT:
        return str(read) if read is not None else KILO_ENDPOINT
    if key == keys.KILO_FORCE_INTERNAL_IP:
        return read if read is not None else KILO_INTERNAL
    if key == keys.KILO_ALLOWED_LOCATION_IPS:
        return list(read)  # type: ignore[arg-type]
    return read


FIELD = {
    keys.KILO_FORCE_ENDPOINT: "endpoint",
    keys.KILO_FORCE_INTERNAL_IP: "internal_ip",
    keys.KILO_PERSISTENT_KEEPALIVE: "persistent_keepalive",
    keys.KILO_ALLOWED_LOCATION_IPS: "allowed_location_ips",
    keys.KILO_LOCATION: "location",
    keys.KILO_LEADER: "leader_annotation",
}
CORPUS = {
    keys.KILO_FORCE_ENDPOINT: list(ENDPOINTS),
    keys.KILO_FORCE_INTERNAL_IP: list(INTERNAL_IPS),
    keys.KILO_PERSISTENT_KEEPALIVE: list(KEEPALIVES),
    keys.KILO_ALLOWED_LOCATION_IPS: [*ALLOWED, "2001:DB8::/32,10.0.0.0/8", "10.0.0.0/33"],
    keys.KILO_LOCATION: ["eu-central", "", "Hetzner_FSN1", "a b"],
    keys.KILO_LEADER: ["true", "false", ""],
}


@needs_kilo_topo
@pytest.mark.parametrize("key", sorted(CORPUS))
def test_kilo_reads_each_value_as_topoctl_says(key: str) -> None:
    values = CORPUS[key]
    for value, read in zip(values, kilo_reads(key, values), strict=True):
        assert read[FIELD[key]] == shown(key, value), (key, value, read)
