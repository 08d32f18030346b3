"""``topoctl import``'s core: live nodes -> the sites that declare what Kilo reads there.

Each case builds a few nodes, imports them, and checks the sites and the notes; the
round trip over generated clusters is tests/usecases/test_import_roundtrip.py.
"""

from __future__ import annotations

import pytest

from reconciler.core.adoption.adopt import adopt
from reconciler.core.adoption.pools import name_prefix
from reconciler.core.adoption.values import Adoption, ImportedSite, NoteKind
from reconciler.core.planning.owned import render_owned
from reconciler.model import keys
from reconciler.model.state import NodeState
from tests.core.test_plan import kilo_annotations, node_object

REGION = "topology.kubernetes.io/region"
INSTANCE = "node.kubernetes.io/instance-type"


def node(
    name: str,
    location: str | None = "fsn1",
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    **annotations: str,
) -> NodeState:
    """A node running Kilo; keyword arguments are Kilo keys by their short name."""
    found = kilo_annotations("198.51.100.1:51820", "10.0.0.1/24")
    if location is not None:
        found[keys.KILO_LOCATION] = location
    for short, value in annotations.items():
        found[_key(short)] = value
    return NodeState.from_object(
        node_object(name, labels=labels or {}, annotations=found, taints=taints or [])
    )


def _key(short: str) -> str:
    return {
        "leader": keys.KILO_LEADER,
        "endpoint": keys.KILO_FORCE_ENDPOINT,
        "internal": keys.KILO_FORCE_INTERNAL_IP,
        "keepalive": keys.KILO_PERSISTENT_KEEPALIVE,
        "allowed": keys.KILO_ALLOWED_LOCATION_IPS,
        "granularity": keys.KILO_GRANULARITY,
        "wg": keys.KILO_WIREGUARD_IP,
        "owned": keys.TOPOCTL_OWNED,
        "talos": keys.TALOS_OWNED_ANNOTATIONS,
        "talos_labels": keys.TALOS_OWNED_LABELS,
    }.get(short, short)


def site_of(adoption: Adoption, name: str) -> ImportedSite:
    return next(s for s in adoption.sites if s.name == name)


def notes(adoption: Adoption, kind: NoteKind) -> list[str]:
    return [n.line() for n in adoption.notes if n.kind is kind]


def test_a_site_per_kilo_location_with_the_region_label_as_kilos_fallback() -> None:
    found = adopt([node("a1", "ams"), node("f1", None, labels={REGION: "fsn1"}), node("f2")], "c")
    assert [s.name for s in found.sites] == ["ams", "fsn1"]
    assert site_of(found, "fsn1").members == ("f1", "f2")
    assert found.left_out == ()


@pytest.mark.parametrize(
    ("location", "said"), [("Hetzner_FSN1", "not a DNS-1123 label"), ("", "no Kilo location")]
)
def test_a_location_that_cannot_be_a_site_name_is_left_out_and_says_what_to_do(
    location: str, said: str
) -> None:
    found = adopt([node("x1", location), node("x2", location), node("f1")], "c")
    assert [s.name for s in found.sites] == ["fsn1"]
    assert found.left_out == ("x1", "x2")
    (line,) = notes(found, NoteKind.LEFT_OUT)
    assert said in line
    assert "kubectl annotate node x1 x2 kilo.squat.ai/location=" in line


def test_leader_false_is_a_pinned_leader_and_the_note_says_why() -> None:
    found = adopt([node("f1", leader="false"), node("f2", leader=""), node("f3")], "c")
    assert site_of(found, "fsn1").leaders == ("f1", "f2")
    (line,) = notes(found, NoteKind.MISREAD)
    assert "'false'" in line and "presence" in line


@pytest.mark.parametrize(
    ("value", "site", "kind", "said"),
    [
        ("25", 25, None, ""),
        ("025", 25, None, ""),
        ("20s", None, NoteKind.MISREAD, "write 20"),
        ("0", None, NoteKind.MISREAD, "0 turns keepalive off"),
        ("70000", None, NoteKind.LEFT_OUT, "out of range"),
        ("-5", None, NoteKind.LEFT_OUT, "-5"),
    ],
)
def test_keepalive_is_what_kilo_reads(
    value: str, site: int | None, kind: NoteKind | None, said: str
) -> None:
    found = adopt([node("f1", keepalive=value), node("f2", keepalive=value)], "c")
    if kind is NoteKind.LEFT_OUT:
        assert found.sites == () and found.left_out == ("f1", "f2")
    else:
        assert site_of(found, "fsn1").keepalive == site
    if kind is not None:
        assert all(said in line for line in notes(found, kind))


def test_keepalive_on_some_members_stays_on_those_nodes() -> None:
    found = adopt([node("f1", keepalive="20"), node("f2")], "c")
    imported = site_of(found, "fsn1")
    assert imported.keepalive is None
    assert [(n.name, n.keepalive) for n in imported.nodes] == [("f1", 20), ("f2", None)]


@pytest.mark.parametrize(
    ("value", "endpoint", "kind"),
    [
        ("203.0.113.9:51820", "203.0.113.9:51820", None),
        ("[2001:DB8::1]:51820", "[2001:db8::1]:51820", None),
        ("203.0.113.9", None, NoteKind.MISREAD),  # no port: Kilo ignores it
        ("GW.example.com:51820", None, NoteKind.MISREAD),
        ("127.0.0.1:51820", None, NoteKind.LEFT_OUT),  # Kilo uses it; validate refuses it
    ],
)
def test_force_endpoint_is_what_kilo_reads(
    value: str, endpoint: str | None, kind: NoteKind | None
) -> None:
    found = adopt([node("f1", endpoint=value), node("f2")], "c")
    if kind is NoteKind.LEFT_OUT:
        assert found.left_out == ("f1",)
        assert "loopback" in notes(found, kind)[0]
        return
    listed = {n.name: n for n in site_of(found, "fsn1").nodes}
    assert listed["f1"].endpoint == endpoint
    assert bool(notes(found, NoteKind.MISREAD)) is (kind is NoteKind.MISREAD)


@pytest.mark.parametrize(
    ("value", "internal", "kind"),
    [
        ("10.0.0.5/32", "10.0.0.5", None),
        ("10.0.0.5", None, NoteKind.MISREAD),  # no prefix: Kilo ignores it
        ("-", None, NoteKind.LEFT_OUT),  # no internal IP: a site cannot say it
        ("10.0.0.5/24", None, NoteKind.LEFT_OUT),  # the /24 is Kilo's; a site writes /32
    ],
)
def test_force_internal_ip_is_what_kilo_reads(
    value: str, internal: str | None, kind: NoteKind | None
) -> None:
    found = adopt([node("f1", internal=value), node("f2")], "c")
    if kind is NoteKind.LEFT_OUT:
        assert found.left_out == ("f1",)
        return
    assert {n.name: n.internal_ip for n in site_of(found, "fsn1").nodes}["f1"] == internal


def test_allowed_ips_are_the_locations_union_and_the_spread_is_noted() -> None:
    found = adopt(
        [
            node("f1", allowed="10.10.0.0/16, 10.20.0.0/16"),  # Kilo drops the padded item
            node("f2", allowed="10.30.0.0/16,10.10.0.0/16"),
            node("f3"),
        ],
        "c",
    )
    assert site_of(found, "fsn1").allowed_location_ips == ("10.10.0.0/16", "10.30.0.0/16")
    assert "' 10.20.0.0/16'" in notes(found, NoteKind.MISREAD)[0]
    (spread,) = notes(found, NoteKind.SPREAD)
    assert "f1, f2, f3" in spread and "changes nothing it routes" in spread


def test_allowed_ips_with_host_bits_leave_the_node_out() -> None:
    found = adopt([node("f1", allowed="10.10.0.1/16"), node("f2")], "c")
    assert found.left_out == ("f1",)
    assert "host bits" in notes(found, NoteKind.LEFT_OUT)[0]


def test_allowed_ips_overlapping_another_locations_leave_the_later_carriers_out() -> None:
    found = adopt(
        [node("a1", "ams", allowed="10.0.0.0/8"), node("f1", allowed="10.10.0.0/16"), node("f2")],
        "c",
    )
    assert found.left_out == ("f1",)
    assert "overlaps 10.0.0.0/8 of site 'ams'" in notes(found, NoteKind.LEFT_OUT)[0]


def test_under_full_granularity_one_member_carries_the_allowed_ips_first() -> None:
    found = adopt(
        [
            node("f1", granularity="full"),
            node("f2", granularity="full", allowed="10.10.0.0/16"),
            node("f3", granularity="full", allowed="10.20.0.0/16"),
        ],
        "c",
    )
    imported = site_of(found, "fsn1")
    assert found.cluster.granularity == "full"
    assert imported.nodes[0].name == "f2"  # the first listed node carries them
    assert imported.allowed_location_ips == ("10.10.0.0/16",)
    assert found.left_out == ("f3",)


def test_under_full_granularity_a_pinned_leader_carries_them_or_none_can() -> None:
    found = adopt(
        [
            node("f1", granularity="full", leader="true"),
            node("f2", granularity="full", leader="true", allowed="10.10.0.0/16"),
        ],
        "c",
    )
    assert site_of(found, "fsn1").leaders == ("f2", "f1")
    shut = adopt(
        [
            node("f1", granularity="full", leader=""),
            node("f2", granularity="full", allowed="10.10.0.0/16"),
        ],
        "c",
    )
    assert shut.left_out == ("f2",)


def test_granularity_and_subnet_come_from_what_kilo_wrote() -> None:
    found = adopt(
        [
            node("f1", granularity="location", wg="10.5.0.1/16"),
            node("f2", granularity="location"),
            node("f3", granularity="cross"),
        ],
        "c",
    )
    assert found.cluster.granularity == "location"
    assert found.cluster.subnet == "10.5.0.0/16"
    assert "differs between nodes" in notes(found, NoteKind.CHOICE)[0]


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("fsn1-worker-7kq2p", "fsn1-worker-"),
        ("node12", "node"),
        ("gw", ""),
        ("a-", ""),
        ("w-1", ""),
        ("n1", ""),
    ],
)
def test_name_prefix(name: str, prefix: str) -> None:
    assert name_prefix(name) == prefix


def test_a_pool_is_written_when_its_selector_claims_exactly_its_nodes() -> None:
    workers = {INSTANCE: "cx32"}
    found = adopt(
        [
            node("fsn1-gw-1", leader="true"),
            node("fsn1-worker-a1", labels=workers),
            node("fsn1-worker-b2", labels=workers),
            node("fsn1-cp-1", labels={keys.LABEL_CONTROL_PLANE: ""}),
            node("fsn1-cp-2", labels={keys.LABEL_CONTROL_PLANE: ""}),
        ],
        "c",
    )
    imported = site_of(found, "fsn1")
    (pool,) = imported.pools
    assert pool.sure and pool.name == "fsn1-worker"
    assert pool.match_labels == workers and pool.name_pattern == "fsn1-worker-*"
    # pool members need no entry; the leader and the control plane are listed
    assert [n.name for n in imported.nodes] == ["fsn1-cp-1", "fsn1-cp-2", "fsn1-gw-1"]


def test_a_pool_that_would_claim_other_nodes_is_only_proposed() -> None:
    found = adopt(
        [node("work-1", "ams"), node("work-2", "ams"), node("work-3", "fsn1")],
        "c",
    )
    (pool,) = site_of(found, "ams").pools
    assert not pool.sure and "work-3" in pool.doubt
    assert [n.name for n in site_of(found, "ams").nodes] == ["work-1", "work-2"]


def test_what_topoctl_set_is_declared_again_and_talos_keys_are_left_to_talos() -> None:
    record = render_owned(
        {"labels": ["role", "zone"], "annotations": ["team"], "taints": ["dedicated:NoSchedule"]}
    )
    taint = [{"key": "dedicated", "value": "gw", "effect": "NoSchedule"}]
    found = adopt(
        [
            node(
                "f1",
                labels={"role": "gw", "zone": "a"},
                taints=taint,
                owned=record,
                team="x",
                talos_labels="zone",
            ),
            node("f2", labels={"role": "gw"}, owned=record, team="x"),
        ],
        "c",
    )
    imported = site_of(found, "fsn1")
    assert dict(imported.carried.labels) == {"role": "gw"}
    assert dict(imported.carried.annotations) == {"team": "x"}
    listed = {n.name: n for n in imported.nodes}
    assert [t.ident for t in listed["f1"].carried.taints] == ["dedicated:NoSchedule"]
    assert "zone" not in listed["f1"].carried.labels  # Talos manages it
    assert any(
        "label zone" in line and "left to Talos" in line for line in notes(found, NoteKind.TALOS)
    )


def test_a_talos_managed_kilo_key_is_imported_and_the_note_says_change_it_in_talos() -> None:
    found = adopt([node("f1", keepalive="20", talos=keys.KILO_PERSISTENT_KEEPALIVE)], "c")
    assert site_of(found, "fsn1").keepalive == 20
    (line,) = notes(found, NoteKind.TALOS)
    assert "machine config" in line


def test_the_import_is_the_same_whatever_the_node_order() -> None:
    nodes = [node(f"f{i}", keepalive=str(20 + i % 2), allowed="10.10.0.0/16") for i in range(6)]
    assert adopt(nodes, "c") == adopt(list(reversed(nodes)), "c")
