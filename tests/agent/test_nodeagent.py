"""The node agent's pure decisions: addresses, the taint, settings, the condition."""

from __future__ import annotations

import errno
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.agent.addresses import addresses_ready, merge_addresses, without_uninitialized
from reconciler.core.agent.condition import MAX_MESSAGE, Condition, judge, merge_condition
from reconciler.core.agent.published import Published, parse_settings
from reconciler.core.agent.routes import KernelRoute, RouteApplyResult, RouteConflict, RouteFailure
from reconciler.model import keys
from reconciler.model.settings import AgentRoute, AgentSettings, SettingsFormatError
from reconciler.model.state import NodeCondition, TaintValue

Address = tuple[str, str]


def internal(address: str) -> Address:
    return ("InternalIP", address)


def external(address: str) -> Address:
    return ("ExternalIP", address)


def hostname(name: str = "fsn1-worker-1") -> Address:
    return ("Hostname", name)


# --- merge_addresses -------------------------------------------------------------------


@dataclass(frozen=True)
class AddressCase:
    current: list[Address]
    detected_external: str | None
    detected_internal: str | None
    expected: list[Address]


ADDRESS_CASES: dict[str, AddressCase] = {
    "external added, kubelet InternalIP and Hostname kept": AddressCase(
        [internal("10.10.0.3"), hostname()],
        "192.0.2.10",
        None,
        [internal("10.10.0.3"), hostname(), external("192.0.2.10")],
    ),
    "external replaces the ExternalIP of its family in place": AddressCase(
        [internal("10.10.0.3"), external("192.0.2.99"), hostname()],
        "192.0.2.10",
        None,
        [internal("10.10.0.3"), external("192.0.2.10"), hostname()],
    ),
    "internal replaces the InternalIP of its family": AddressCase(
        [internal("10.10.0.3"), hostname()],
        None,
        "10.10.0.9",
        [internal("10.10.0.9"), hostname()],
    ),
    "dual-stack: an IPv4 detection keeps the IPv6 InternalIP": AddressCase(
        [internal("10.10.0.3"), internal("fd00:10::3"), hostname()],
        None,
        "10.10.0.9",
        [internal("10.10.0.9"), internal("fd00:10::3"), hostname()],
    ),
    "dual-stack: an IPv6 detection replaces only the IPv6 InternalIP": AddressCase(
        [internal("10.10.0.3"), internal("fd00:10::3"), hostname()],
        None,
        "fd00:10::9",
        [internal("10.10.0.3"), internal("fd00:10::9"), hostname()],
    ),
    "a new family goes right after the last address of its type": AddressCase(
        [internal("10.10.0.3"), hostname()],
        None,
        "fd00:10::9",
        [internal("10.10.0.3"), internal("fd00:10::9"), hostname()],
    ),
    "both detections at once": AddressCase(
        [internal("10.10.0.3"), hostname()],
        "192.0.2.10",
        "10.10.0.9",
        [internal("10.10.0.9"), hostname(), external("192.0.2.10")],
    ),
    "an ExternalIP equal to an InternalIP is dropped (behind NAT)": AddressCase(
        [internal("10.10.0.3"), hostname()],
        "10.10.0.3",
        None,
        [internal("10.10.0.3"), hostname()],
    ),
    "a stale ExternalIP goes when the detected one equals an InternalIP": AddressCase(
        [internal("10.10.0.3"), external("192.0.2.99"), hostname()],
        "10.10.0.3",
        None,
        [internal("10.10.0.3"), hostname()],
    ),
    "an address already listed second in its family is not duplicated": AddressCase(
        [internal("10.10.0.3"), internal("10.10.0.9"), hostname()],
        None,
        "10.10.0.9",
        [internal("10.10.0.3"), internal("10.10.0.9"), hostname()],
    ),
    "nothing detected: nothing changes": AddressCase(
        [internal("10.10.0.3"), external("192.0.2.99"), hostname()],
        None,
        None,
        [internal("10.10.0.3"), external("192.0.2.99"), hostname()],
    ),
    "empty status gets the detected addresses": AddressCase(
        [],
        "192.0.2.10",
        "10.10.0.9",
        [internal("10.10.0.9"), external("192.0.2.10")],
    ),
}


@pytest.mark.parametrize("case", ADDRESS_CASES.values(), ids=ADDRESS_CASES.keys())
def test_merge_addresses(case: AddressCase) -> None:
    before = json.dumps(case.current)

    merged = merge_addresses(case.current, case.detected_external, case.detected_internal)

    assert merged == tuple(case.expected)
    assert json.dumps(case.current) == before, "the input list must not be modified"


def test_merge_addresses_is_identity_when_already_in_place() -> None:
    current = [internal("10.10.0.9"), internal("fd00:10::3"), hostname(), external("192.0.2.10")]

    assert merge_addresses(current, "192.0.2.10", "10.10.0.9") == tuple(current)


# --- without_uninitialized ---------------------------------------------------------------

UNINITIALIZED = TaintValue(keys.TAINT_UNINITIALIZED, "NoSchedule", "true")
GPU = TaintValue("nvidia.com/gpu", "NoSchedule", "present")
UNREACHABLE = TaintValue(keys.TAINT_UNREACHABLE, "NoExecute")

TAINT_CASES: dict[str, tuple[list[TaintValue], list[TaintValue] | None]] = {
    "the only taint goes": ([UNINITIALIZED], []),
    "others are kept, in order": ([GPU, UNINITIALIZED, UNREACHABLE], [GPU, UNREACHABLE]),
    "absent: None (nothing to write)": ([GPU, UNREACHABLE], None),
    "no taints at all: None": ([], None),
    "any effect of that key goes": (
        [GPU, TaintValue(keys.TAINT_UNINITIALIZED, "NoExecute")],
        [GPU],
    ),
}


@pytest.mark.parametrize(("taints", "expected"), TAINT_CASES.values(), ids=TAINT_CASES.keys())
def test_without_uninitialized(taints: list[TaintValue], expected: list[TaintValue] | None) -> None:
    assert without_uninitialized(taints) == (None if expected is None else tuple(expected))


# --- parse_settings ------------------------------------------------------------------------


def settings_annotation(**payload: Any) -> dict[str, str]:
    base: dict[str, Any] = {
        "v": 1,
        "externalIPTarget": "203.0.113.50",
        "internalIPTarget": None,
        "uninitializedTaint": "remove",
        "protocol": 193,
        "routes": [],
    }
    base.update(payload)
    return {keys.TOPOCTL_AGENT: json.dumps(base)}


def test_parse_settings_reads_targets_protocol_and_routes() -> None:
    settings = parse_settings(
        settings_annotation(
            internalIPTarget="10.200.0.1",
            protocol=200,
            routes=[
                {"to": "172.31.0.0/16", "via": "10.10.0.2", "dev": "cilium_tunl", "onlink": True},
                {"to": "10.77.0.0/24", "via": "198.51.100.1", "table": 100, "metric": 5},
            ],
        )
    )

    assert (settings.settings.external_ip_target, settings.settings.internal_ip_target) == (
        "203.0.113.50",
        "10.200.0.1",
    )
    assert settings.settings.removes_uninitialized_taint
    assert settings.protocol == 200
    assert settings.routes == (
        KernelRoute("172.31.0.0/16", "10.10.0.2", "cilium_tunl", 254, 0, True, 200),
        KernelRoute("10.77.0.0/24", "198.51.100.1", None, 100, 5, False, 200),
    )
    assert settings.invalid_routes == ()


def test_parse_settings_defaults_to_protocol_193_and_taint_removal() -> None:
    raw = {
        keys.TOPOCTL_AGENT: json.dumps({"v": 1, "routes": [{"to": "10.1.0.0/16", "dev": "eth0"}]})
    }

    settings = parse_settings(raw)

    assert settings.protocol == keys.DEFAULT_ROUTE_PROTOCOL
    assert settings.settings.removes_uninitialized_taint is True
    assert settings.settings.external_ip_target is None
    assert settings.routes[0].protocol == keys.DEFAULT_ROUTE_PROTOCOL


def test_parse_settings_keeps_the_taint_when_told_to() -> None:
    settings = parse_settings(settings_annotation(uninitializedTaint="keep"))

    assert settings.settings.removes_uninitialized_taint is False


def test_parse_settings_without_the_annotation_says_what_to_run() -> None:
    with pytest.raises(
        SettingsFormatError, match=r"no topoctl\.io/agent annotation.*topoctl apply"
    ):
        parse_settings({"kilo.squat.ai/location": "fsn1"})


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("{not json", "Expecting property name"),
        ("[]", "a JSON object is expected, not list"),
        ('"a string"', "a JSON object is expected, not str"),
        ("null", "a JSON object is expected, not NoneType"),
        ('{"v": 1, "protocol": "tcp"}', "protocol: Input should be a valid integer"),
        ('{"v": 1, "protocol": 193.0}', "protocol: Input should be a valid integer"),
        ('{"v": 1, "uninitializedTaint": "lift"}', "uninitializedTaint: Input should be"),
        ('{"v": 1, "routes": {"to": "10.0.0.0/8"}}', "routes: a list is expected"),
        ('{"v": 1, "externalIPTarget": 7}', "externalIPTarget: Input should be a valid string"),
        ('{"v": 1, "extra": true}', "extra: Extra inputs are not permitted"),
    ],
    ids=[
        "truncated",
        "a list",
        "a string",
        "null",
        "non-numeric protocol",
        "fractional protocol",
        "unknown taint mode",
        "routes not a list",
        "target not a string",
        "unknown field",
    ],
)
def test_parse_settings_unreadable_annotation_is_a_settings_error(raw: str, names: str) -> None:
    with pytest.raises(
        SettingsFormatError, match=r"topoctl\.io/agent is not valid agent settings"
    ) as err:
        parse_settings({keys.TOPOCTL_AGENT: raw})

    assert names in str(err.value)


@pytest.mark.parametrize(("version", "shown"), [(2, "2"), (None, "None"), ("1", "'1'"), (0, "0")])
def test_parse_settings_unknown_format_version_is_named(version: Any, shown: str) -> None:
    payload: dict[str, Any] = {"routes": []}
    if version is not None:
        payload["v"] = version

    with pytest.raises(SettingsFormatError) as err:
        parse_settings({keys.TOPOCTL_AGENT: json.dumps(payload)})

    assert str(err.value) == (
        f"topoctl.io/agent has format version {shown}; this agent reads version 1: "
        "run an agent and a planner of the same topoctl release"
    )


def test_parse_settings_reports_invalid_routes_and_keeps_the_valid_ones() -> None:
    settings = parse_settings(
        settings_annotation(
            routes=[
                {"to": "10.1.0.0/16", "dev": "eth0"},
                {"to": "10.2.0.0/33", "dev": "eth0"},
                {"via": "10.0.0.1"},
                {"to": "10.3.0.0/16"},
                {"to": "10.4.0.0/16", "dev": "eth0", "table": "nosuchtable"},
            ]
        )
    )

    assert [r.dst for r in settings.routes] == ["10.1.0.0/16"]
    assert len(settings.invalid_routes) == 4
    # shape problems first (the model refuses them), then what the kernel could not hold
    assert "to: Field required" in settings.invalid_routes[0]  # the missing key is named
    assert "table: Input should be a valid integer" in settings.invalid_routes[1]
    assert "10.2.0.0/33" in settings.invalid_routes[2]
    assert "needs a gateway, a device or both" in settings.invalid_routes[3]


def test_the_planner_and_the_agent_share_one_contract() -> None:
    """What desired.agent_annotation writes, parse_settings reads back unchanged."""
    published = AgentSettings(
        external_ip_target="203.0.113.50",
        internal_ip_target="10.200.0.1",
        uninitialized_taint="keep",
        protocol=200,
        routes=(
            AgentRoute(to="10.77.0.0/24", via="198.51.100.1", table=100, metric=5),
            AgentRoute(to="172.31.0.0/16", via="10.10.0.2", dev="cilium_tunl", onlink=True),
        ),
    )
    raw = published.to_annotation()

    read, invalid = AgentSettings.from_annotation(raw)

    assert invalid == ()
    assert read == published.model_copy(
        update={"routes": tuple(sorted(published.routes, key=AgentRoute.order))}
    )
    assert read.to_annotation() == raw
    assert json.loads(raw)["v"] == 1
    assert parse_settings({keys.TOPOCTL_AGENT: raw}).routes == (
        KernelRoute("10.77.0.0/24", "198.51.100.1", None, 100, 5, False, 200),
        KernelRoute("172.31.0.0/16", "10.10.0.2", "cilium_tunl", 254, 0, True, 200),
    )


# --- judge ---------------------------------------------------------------------------------

ROUTE_A = KernelRoute.build("10.1.0.0/16", gateway="192.0.2.1")
ROUTE_B = KernelRoute.build("172.31.0.0/16", gateway="10.10.0.2", dev="cilium_tunl", onlink=True)


def settings_with(*, invalid: Sequence[str] = ()) -> Published:
    return Published(
        AgentSettings(external_ip_target="203.0.113.50", protocol=193),
        routes=(ROUTE_A, ROUTE_B),
        invalid_routes=tuple(invalid),
    )


def failed(route: KernelRoute, reason: str, code: int) -> RouteApplyResult:
    """A failed write as the netlink adapter reports it: reason text and errno."""
    return RouteApplyResult(failed=(RouteFailure(route, "replace", reason, code),), messages_sent=1)


@dataclass(frozen=True)
class JudgeCase:
    settings: Published | None
    problems: tuple[str, ...] = ()
    conflicts: tuple[RouteConflict, ...] = ()
    result: RouteApplyResult | None = None
    in_place: int = 2
    route_errors: tuple[str, ...] = ()
    expected_status: str = "False"
    expected_reason: str = ""
    message_contains: tuple[str, ...] = ()


JUDGE_CASES: dict[str, JudgeCase] = {
    "converged": JudgeCase(
        settings_with(),
        result=RouteApplyResult(),
        expected_status="True",
        expected_reason="Converged",
        message_contains=("2 route(s) in place",),
    ),
    "no settings": JudgeCase(
        None,
        problems=("no topoctl.io/agent annotation yet",),
        expected_reason="NoSettings",
        message_contains=("no topoctl.io/agent annotation yet",),
    ),
    "address detection failed": JudgeCase(
        settings_with(),
        problems=("ExternalIP: no route to 203.0.113.50, so no source address to use",),
        result=RouteApplyResult(),
        expected_reason="AddressDetectionFailed",
        message_contains=("no route to 203.0.113.50",),
    ),
    "invalid route": JudgeCase(
        settings_with(invalid=("{'to': '10.2.0.0/33'}: bad prefix",)),
        result=RouteApplyResult(),
        expected_reason="InvalidRoute",
        message_contains=("invalid route {'to': '10.2.0.0/33'}: bad prefix",),
    ),
    "route conflict": JudgeCase(
        settings_with(),
        conflicts=(RouteConflict(ROUTE_A, 4),),
        result=RouteApplyResult(),
        in_place=1,
        expected_reason="RouteConflict",
        message_contains=("route 10.1.0.0/16 via 192.0.2.1 not written", "protocol 4"),
    ),
    "device missing": JudgeCase(
        settings_with(),
        result=failed(ROUTE_B, "device cilium_tunl not found", errno.ENODEV),
        in_place=1,
        expected_reason="DeviceMissing",
        message_contains=("replace 172.31.0.0/16 via 10.10.0.2 dev cilium_tunl",),
    ),
    "route write failed": JudgeCase(
        settings_with(),
        result=failed(ROUTE_A, "gateway 192.0.2.1 unreachable", errno.ENETUNREACH),
        in_place=1,
        expected_reason="RouteWriteFailed",
        message_contains=("gateway 192.0.2.1 unreachable",),
    ),
    "routes not read at all": JudgeCase(
        settings_with(),
        route_errors=("routes: dump 26 failed: Operation not permitted",),
        in_place=0,
        expected_reason="RouteWriteFailed",
        message_contains=("routes: dump 26 failed",),
    ),
    "a route problem outranks a detection problem, both in the message": JudgeCase(
        settings_with(),
        problems=("ExternalIP: no route to 203.0.113.50, so no source address to use",),
        conflicts=(RouteConflict(ROUTE_A, 2),),
        result=RouteApplyResult(),
        in_place=1,
        expected_reason="RouteConflict",
        message_contains=("no route to 203.0.113.50", "held by protocol 2"),
    ),
}


@pytest.mark.parametrize("case", JUDGE_CASES.values(), ids=JUDGE_CASES.keys())
def test_judge(case: JudgeCase) -> None:
    condition = judge(
        case.settings,
        case.problems,
        case.conflicts,
        case.result,
        case.in_place,
        route_errors=case.route_errors,
    )

    assert (condition.status, condition.reason) == (case.expected_status, case.expected_reason)
    for fragment in case.message_contains:
        assert fragment in condition.message


def test_judge_clips_long_messages() -> None:
    conflicts = tuple(
        RouteConflict(KernelRoute.build(f"10.{i}.0.0/16", gateway="192.0.2.1"), 4)
        for i in range(200)
    )

    condition = judge(settings_with(), (), conflicts, RouteApplyResult(), 0)

    assert len(condition.message) == MAX_MESSAGE
    assert condition.message.endswith("...")


@pytest.mark.parametrize(
    ("external", "internal_ip", "external_target", "internal_target", "ready"),
    [
        ("192.0.2.10", None, "203.0.113.50", None, True),
        (None, None, "203.0.113.50", None, False),
        ("192.0.2.10", None, "203.0.113.50", "10.200.0.1", False),
        ("192.0.2.10", "198.51.100.10", "203.0.113.50", "10.200.0.1", True),
        (None, None, None, None, True),
    ],
)
def test_addresses_ready_needs_every_enabled_detection(
    external: str | None,
    internal_ip: str | None,
    external_target: str | None,
    internal_target: str | None,
    ready: bool,
) -> None:
    settings = AgentSettings(external_ip_target=external_target, internal_ip_target=internal_target)

    assert addresses_ready(settings, external, internal_ip) is ready


# --- merge_condition -----------------------------------------------------------------------

EARLIER = "2030-01-01T00:00:00Z"
NOW = "2030-01-01T00:05:00Z"
READY = {
    "type": "Ready",
    "status": "True",
    "reason": "KubeletReady",
    "message": "kubelet is posting ready status",
    "lastHeartbeatTime": EARLIER,
    "lastTransitionTime": EARLIER,
}


def ours(status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": keys.CONDITION_AGENT,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": EARLIER,
        "lastTransitionTime": EARLIER,
    }


def conditions(*entries: dict[str, Any]) -> list[NodeCondition]:
    """Conditions as NodeState holds them, from the API's JSON."""
    return [
        NodeCondition(
            e["type"],
            e["status"],
            e.get("reason", ""),
            e.get("message", ""),
            e.get("lastTransitionTime", ""),
            e.get("lastHeartbeatTime", ""),
        )
        for e in entries
    ]


def merge(
    current: list[dict[str, Any]], condition: Condition, now: str
) -> list[dict[str, Any]] | None:
    """merge_condition on the API's JSON, for readable expectations."""
    merged = merge_condition(conditions(*current), condition, now)
    return None if merged is None else [c.as_dict() for c in merged]


def test_merge_condition_appends_ours_with_both_times_now() -> None:
    merged = merge([READY], Condition("True", "Converged", "0 route(s) in place"), NOW)

    assert merged == [
        READY,
        {
            "type": keys.CONDITION_AGENT,
            "status": "True",
            "reason": "Converged",
            "message": "0 route(s) in place",
            "lastHeartbeatTime": NOW,
            "lastTransitionTime": NOW,
        },
    ]


def test_merge_condition_unchanged_is_none() -> None:
    current = [READY, ours("True", "Converged", "2 route(s) in place")]

    same = Condition("True", "Converged", "2 route(s) in place")

    assert merge(current, same, NOW) is None


def test_merge_condition_same_status_new_message_keeps_transition_time() -> None:
    current = [READY, ours("True", "Converged", "2 route(s) in place")]

    merged = merge(current, Condition("True", "Converged", "3 route(s) in place"), NOW)

    assert merged is not None
    assert merged[0] == READY
    assert merged[1]["message"] == "3 route(s) in place"
    assert merged[1]["lastHeartbeatTime"] == NOW
    assert merged[1]["lastTransitionTime"] == EARLIER


def test_merge_condition_same_status_new_reason_keeps_transition_time() -> None:
    current = [ours("False", "RouteConflict", "x")]

    merged = merge(current, Condition("False", "DeviceMissing", "y"), NOW)

    assert merged is not None
    assert (merged[0]["reason"], merged[0]["lastTransitionTime"]) == ("DeviceMissing", EARLIER)


def test_merge_condition_status_flip_moves_transition_time() -> None:
    current = [ours("False", "AddressDetectionFailed", "no route"), READY]

    merged = merge(current, Condition("True", "Converged", "0 route(s) in place"), NOW)

    assert merged is not None
    assert merged[0] == {
        "type": keys.CONDITION_AGENT,
        "status": "True",
        "reason": "Converged",
        "message": "0 route(s) in place",
        "lastHeartbeatTime": NOW,
        "lastTransitionTime": NOW,
    }
    assert merged[1] == READY


def test_merge_condition_does_not_modify_its_input() -> None:
    current = conditions(ours("False", "NoSettings", "none"))
    before = list(current)

    merge_condition(current, Condition("True", "Converged", "0 route(s) in place"), NOW)

    assert current == before


_ROUTES = st.builds(
    AgentRoute,
    to=st.sampled_from(["10.1.0.0/16", "172.31.0.0/16", "fd00:77::/64", "0.0.0.0/0"]),
    via=st.none() | st.sampled_from(["10.10.0.2", "198.51.100.1"]),
    dev=st.none() | st.sampled_from(["eth0", "cilium_tunl"]),
    table=st.sampled_from([254, 100, 1107]),
    metric=st.integers(0, 2**32 - 1),
    onlink=st.booleans(),
)
_SETTINGS = st.builds(
    AgentSettings,
    external_ip_target=st.none() | st.sampled_from(["8.8.8.8", "2001:4860:4860::8888"]),
    internal_ip_target=st.none() | st.sampled_from(["10.200.0.1"]),
    uninitialized_taint=st.sampled_from(["remove", "keep"]),
    protocol=st.integers(5, 255),
    routes=st.lists(_ROUTES, max_size=6).map(tuple),
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_SETTINGS)
def test_what_the_planner_writes_the_agent_reads_back(published: AgentSettings) -> None:
    raw = published.to_annotation()

    read, invalid = AgentSettings.from_annotation(raw)

    assert invalid == ()
    assert read.to_annotation() == raw
    assert sorted(read.routes, key=AgentRoute.order) == sorted(
        published.routes, key=AgentRoute.order
    )
    assert read.model_copy(update={"routes": published.routes}) == published
