"""Bad snapshot files and faults while writing one: clear errors, and nothing written wrongly.

Each case runs ``topoctl plan`` and ``topoctl apply`` on a damaged copy of the example
snapshot and checks the exit status, the message (file, item and field), that no
traceback or "internal error" shows, and that the file is byte for byte unchanged.
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.adapters.atomicfile import signals_held, write_atomic
from reconciler.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_NODES = ROOT / "examples" / "nodes.yaml"
EXAMPLE_SITES = ROOT / "sites"
PLAIN_ENV: dict[str, str | None] = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1"}
TOPOCTL = Path(sys.executable).with_name("topoctl")
Edit = Callable[[dict[str, Any]], None]


def topoctl(*args: str | Path) -> Result:
    result = CliRunner(env=PLAIN_ENV).invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl {args} crashed") from result.exception
    return result


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_NODES.read_text())
    return data


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_SITES, tmp_path / "sites"))


def assert_refused(sites: Path, snapshot: Path, *expected: str) -> None:
    """plan and apply both exit 1 naming the file and ``expected``; the file is unchanged."""
    before = snapshot.read_bytes()
    for args in (("plan",), ("apply", "--yes")):
        result = topoctl(args[0], sites, "--cluster", snapshot, *args[1:])
        message = result.stderr
        assert result.exit_code == 1, (args, result.output)
        assert message.startswith(f"topoctl: error: {snapshot}"), message
        for part in expected:
            assert part in message, (part, message)
        assert "Traceback" not in result.output and "internal error" not in message
        assert snapshot.read_bytes() == before
    assert sorted(p.name for p in snapshot.parent.iterdir()) == sorted(["sites", snapshot.name])


# --- malformed items: file, item and field ---------------------------------------------


_DELETE = object()


def _put(item: int, path: tuple[str, ...], value: Any) -> Edit:
    """Set (or with _DELETE remove) ``items[item]`` at ``path``; keys may hold dots."""

    def edit(doc: dict[str, Any]) -> None:
        target = doc["items"][item]
        for key in path[:-1]:
            target = target.setdefault(key, {})
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


MALFORMED: dict[str, tuple[Edit, str]] = {
    "no name": (
        _put(2, ("metadata", "name"), _DELETE),
        "items[2].metadata.name: expected a non-empty string, got nothing",
    ),
    "empty name": (
        _put(2, ("metadata", "name"), ""),
        "items[2].metadata.name: expected a non-empty",
    ),
    "name a number": (
        _put(2, ("metadata", "name"), 7),
        "items[2].metadata.name: expected a string, got a number (7)",
    ),
    "metadata a list": (
        _put(2, ("metadata",), ["x"]),
        "items[2].metadata: expected a map, got a list",
    ),
    "annotations a list": (
        _put(4, ("metadata", "annotations"), ["a", "b"]),
        "items[4].metadata.annotations: expected a map, got a list",
    ),
    "label value a number": (
        _put(2, ("metadata", "labels", "topology.kubernetes.io/zone"), 3),
        "items[2].metadata.labels['topology.kubernetes.io/zone']: expected a string",
    ),
    "talos ownership a list": (
        _put(0, ("metadata", "annotations", "talos.dev/owned-labels"), ["a", "b"]),
        "items[0].metadata.annotations['talos.dev/owned-labels']: expected a string",
    ),
    "talos ownership a map": (
        _put(1, ("metadata", "annotations", "talos.dev/owned-annotations"), {"a": 1}),
        "items[1].metadata.annotations['talos.dev/owned-annotations']: expected a string",
    ),
    "taints a map": (
        _put(2, ("spec", "taints"), {"key": "a"}),
        "items[2].spec.taints: expected a list, got a map",
    ),
    "taint a string": (
        _put(2, ("spec", "taints"), ["a:NoSchedule"]),
        "items[2].spec.taints[0]: expected a map, got a string",
    ),
    "taint key a list": (
        _put(2, ("spec", "taints"), [{"key": ["a"], "effect": "NoSchedule"}]),
        "items[2].spec.taints[0].key: expected a string, got a list",
    ),
    "status a list": (_put(2, ("status",), []), "items[2].status: expected a map, got a list"),
    "conditions a map": (
        _put(2, ("status", "conditions"), {}),
        "items[2].status.conditions: expected a list, got a map",
    ),
    "condition type a number": (
        _put(2, ("status", "conditions"), [{"type": 1, "status": "True"}]),
        "items[2].status.conditions[0].type: expected a string",
    ),
    "address a string": (
        _put(2, ("status", "addresses"), ["10.0.0.1"]),
        "items[2].status.addresses[0]: expected a map, got a string",
    ),
}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_item_is_refused_by_plan_and_apply(
    sites: Path, tmp_path: Path, fmt: str, case: str
) -> None:
    edit, expected = MALFORMED[case]
    doc = example()
    edit(doc)
    snapshot = tmp_path / f"nodes.{fmt}"
    text = json.dumps(doc, indent=4) if fmt == "json" else yaml.safe_dump(doc, sort_keys=False)
    snapshot.write_text(text)
    assert_refused(sites, snapshot, expected)


# --- content that is no snapshot at all ------------------------------------------------


def _garbage() -> bytes:
    return random.Random(9).randbytes(4096)


def _truncated() -> bytes:
    text = json.dumps(example(), indent=4).encode()
    return text[: len(text) // 2]


UNREADABLE: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "binary garbage": ("yaml", _garbage, "not UTF-8 text"),
    "binary after a brace": ("json", lambda: b"{" + _garbage(), "not UTF-8 text"),
    "truncated JSON": ("json", _truncated, "not valid JSON"),
    "latin-1 YAML": (
        "yaml",
        lambda: EXAMPLE_NODES.read_bytes().replace(b"ams1-gw-1", "ams1-gw-\xe9".encode("latin-1")),
        ":21:",
    ),
    "NUL bytes": ("yaml", lambda: b"items:\n- \x00\x00\n", "not valid YAML"),
    "broken YAML": ("yaml", lambda: b"items:\n  - a: [1, 2\n", "not valid YAML"),
    "empty file": ("yaml", lambda: b"", "expected a List or NodeList"),
    "a scalar": ("yaml", lambda: b"just words\n", "expected a List or NodeList"),
    "a top-level list": ("json", lambda: b"[1, 2]\n", "got a list"),
    "items a map": ("yaml", lambda: b"kind: List\nitems: {a: 1}\n", "expected a List"),
    "an item a string": (
        "yaml",
        lambda: b"kind: List\nitems:\n- hello\n",
        "items[0].kind: expected Node, got a string",
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_content_is_a_clear_error(sites: Path, tmp_path: Path, case: str) -> None:
    fmt, content, expected = UNREADABLE[case]
    snapshot = tmp_path / f"nodes.{fmt}"
    snapshot.write_bytes(content())
    assert_refused(sites, snapshot, expected)


# --- objects that are not Nodes, names given twice -------------------------------------


def _pod_list(doc: dict[str, Any]) -> None:
    doc["kind"] = "PodList"
    for item in doc["items"]:
        item["kind"] = "Pod"


def _configmap(doc: dict[str, Any]) -> None:
    doc["items"][3] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


def _no_kind(doc: dict[str, Any]) -> None:
    del doc["items"][5]["kind"]


def _twice(doc: dict[str, Any]) -> None:
    doc["items"].append(copy.deepcopy(doc["items"][1]))


WRONG: dict[str, tuple[Edit, str]] = {
    "a PodList": (_pod_list, "'PodList' is not a List or NodeList of Nodes"),
    "a ConfigMap among Nodes": (_configmap, "items[3].kind: expected Node, got 'ConfigMap'"),
    "an item without kind": (_no_kind, "items[5].kind: expected Node, got a map"),
    "a name twice": (_twice, "is also items[1]"),
}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("case", sorted(WRONG))
def test_anything_but_nodes_is_never_written(
    sites: Path, tmp_path: Path, fmt: str, case: str
) -> None:
    edit, expected = WRONG[case]
    doc = example()
    edit(doc)
    snapshot = tmp_path / f"nodes.{fmt}"
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc, sort_keys=False)
    snapshot.write_text(text)
    assert_refused(sites, snapshot, expected)


# --- the file keeps its layout; writes go through a symlink ----------------------------


@pytest.mark.parametrize(
    ("layout", "dump"),
    [
        ("compact", lambda d: json.dumps(d, separators=(",", ":")) + "\n"),
        ("indent 2", lambda d: json.dumps(d, indent=2) + "\n"),
        ("indent 4, no final newline", lambda d: json.dumps(d, indent=4)),
        ("tabs", lambda d: json.dumps(d, indent="\t") + "\n"),
    ],
)
def test_json_keeps_its_layout(
    sites: Path, tmp_path: Path, layout: str, dump: Callable[[Any], str]
) -> None:
    snapshot = tmp_path / "nodes.json"
    snapshot.write_text(dump(example()))
    assert topoctl("apply", sites, "--cluster", snapshot, "--yes").exit_code == 0
    after = snapshot.read_text()
    data = json.loads(after)
    assert after != dump(example())  # it was written
    assert after == dump(data)  # ... in the layout it had


def test_a_symlinked_snapshot_is_written_through_the_link(sites: Path, tmp_path: Path) -> None:
    real = tmp_path / "store" / "prod.yaml"
    real.parent.mkdir()
    shutil.copyfile(EXAMPLE_NODES, real)
    link = tmp_path / "nodes.yaml"
    link.symlink_to(Path("store") / "prod.yaml")
    chained = tmp_path / "current.yaml"
    chained.symlink_to("nodes.yaml")
    real.chmod(0o640)
    assert topoctl("apply", sites, "--cluster", chained, "--yes").exit_code == 0
    assert chained.is_symlink() and link.is_symlink()
    assert os.readlink(link) == str(Path("store") / "prod.yaml")
    assert real.read_bytes() != EXAMPLE_NODES.read_bytes()
    assert (real.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["prod.yaml"]
    again = topoctl("plan", sites, "--cluster", chained, "--detailed-exitcode")
    assert again.exit_code == 0, again.output


# --- a write that fails, a plan file that cannot be written ----------------------------


def _limited(limit: int) -> Callable[[], None]:
    """A file-size limit in the child: writes past it fail with EFBIG, as on a full disk."""

    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


def run_topoctl(*args: str | Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOPOCTL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limited(limit) if limit else None,
    )


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_failed_write_leaves_the_snapshot_as_it_was(
    sites: Path, tmp_path: Path, fmt: str
) -> None:
    snapshot = tmp_path / f"nodes.{fmt}"
    doc = example()
    snapshot.write_text(json.dumps(doc, indent=4) if fmt == "json" else EXAMPLE_NODES.read_text())
    before = snapshot.read_bytes()
    run = run_topoctl("apply", sites, "--cluster", snapshot, "--yes", limit=4096)
    assert run.returncode == 1, run
    assert f"topoctl: error: {snapshot}: cannot write: File too large" in run.stderr
    assert "the file is unchanged" in run.stderr and "Traceback" not in run.stderr
    assert snapshot.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["sites", snapshot.name])


def test_plan_out_is_written_whole_or_not_at_all(sites: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    out.write_text("the previous plan\n")
    run = run_topoctl("plan", sites, "--cluster", EXAMPLE_NODES, "--out", out, limit=2048)
    assert run.returncode == 1, run
    assert f"--out {out}: cannot write the plan: File too large" in run.stderr
    assert out.read_text() == "the previous plan\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "sites"]


def test_plan_out_into_a_missing_directory_is_a_clear_error(sites: Path, tmp_path: Path) -> None:
    out = tmp_path / "absent" / "plan.json"
    result = topoctl("plan", sites, "--cluster", EXAMPLE_NODES, "--out", out)
    assert result.exit_code == 1
    assert f"--out {out}: no such directory {out.parent}" in result.stderr
    assert not out.parent.exists()


@pytest.mark.parametrize("name", ["plan.yaml", "plan.yml", "saved"])
def test_a_saved_plan_is_known_by_content_whatever_its_name(
    sites: Path, tmp_path: Path, name: str
) -> None:
    snapshot = tmp_path / "nodes.yaml"
    shutil.copyfile(EXAMPLE_NODES, snapshot)
    out = tmp_path / name
    assert topoctl("plan", sites, "--cluster", snapshot, "--out", out).exit_code == 0
    applied = topoctl("apply", out, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Applied:" in applied.stdout
    assert topoctl("plan", sites, "--cluster", snapshot, "--detailed-exitcode").exit_code == 0


def test_a_topology_file_named_yaml_is_still_a_topology(sites: Path, tmp_path: Path) -> None:
    single = tmp_path / "all.yaml"
    single.write_text("\n---\n".join(p.read_text() for p in sorted(sites.glob("*.yaml"))))
    snapshot = tmp_path / "nodes.yaml"
    shutil.copyfile(EXAMPLE_NODES, snapshot)
    result = topoctl("apply", single, "--cluster", snapshot, "--yes")
    assert result.exit_code == 0, result.output
    assert "Applied:" in result.stdout


# --- signals: the old file or the new one, nothing beside it ---------------------------


def test_a_held_signal_arrives_after_the_file_is_in_place(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old\n")
    seen: list[tuple[int, str]] = []

    def note(signum: int, frame: Any) -> None:
        seen.append((signum, target.read_text()))

    previous = signal.signal(signal.SIGTERM, note)
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            write_atomic(target, b"new\n")
            assert seen == []
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [(signal.SIGTERM, "new\n")]
    # Python's own SIGINT handler, whatever an earlier test in this process left there.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            write_atomic(target, b"newer\n")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert target.read_text() == "newer\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


@pytest.fixture(scope="module")
def big_cluster(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    from bench import nodegen

    root = tmp_path_factory.mktemp("big")
    sites_dir, snapshot = nodegen.write_cluster(root, 5000, 20)
    return sites_dir, snapshot.read_bytes()


WHILE_WRITING = -1.0  # not a delay: the moment the temporary file appears beside it
SIGNALS = [
    (signal.SIGINT, WHILE_WRITING),
    (signal.SIGTERM, WHILE_WRITING),
    (signal.SIGINT, 0.0),
    (signal.SIGTERM, 0.3),
    (signal.SIGINT, 0.8),
    (signal.SIGTERM, 1.4),
    (signal.SIGINT, 2.2),
    (signal.SIGTERM, 5.0),
]


@pytest.mark.parametrize(("signum", "delay"), SIGNALS)
def test_a_signal_during_a_5000_node_apply_leaves_the_old_file_or_the_new(
    big_cluster: tuple[Path, bytes], tmp_path: Path, signum: int, delay: float
) -> None:
    """The signal lands ``delay`` s after the plan is shown (or while the temporary file
    exists): while nodes are patched in memory, while the file is written, or after;
    whatever it hit, the outcome holds."""
    sites_dir, old = big_cluster
    snapshot = tmp_path / "nodes.json"
    snapshot.write_bytes(old)
    shown = tmp_path.parent / f"{tmp_path.name}.out"  # a file: the child never blocks on it
    with shown.open("wb") as stdout:
        child = subprocess.Popen(
            [str(TOPOCTL), "apply", sites_dir, "--cluster", snapshot, "--yes"],
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
        while child.poll() is None and not shown.stat().st_size:
            time.sleep(0.002)  # until the plan is shown: the command's handlers are in place
        while delay == WHILE_WRITING and child.poll() is None:
            if list(tmp_path.glob(".nodes.json.*")):
                break
            time.sleep(0.001)
        try:
            child.wait(timeout=max(delay, 0.0))
        except subprocess.TimeoutExpired:
            child.send_signal(signum)
        err = child.communicate(timeout=120)[1].decode()
    out = shown.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.json"]
    assert "Traceback" not in err and "internal error" not in err
    now = snapshot.read_bytes()
    if child.returncode in (0, -signum):  # -signum: it landed as the interpreter exited
        assert "Applied: 5000 node(s) written" in out and not err
        written = True
    else:
        name = signal.Signals(signum).name
        assert child.returncode == 128 + signum, (child.returncode, err)
        assert err.startswith(f"topoctl: interrupted by {name}: "), err
        written = "was written in full" in err
        assert written or f"nothing written: {snapshot} is unchanged" in err
    if written:
        items = orjson.loads(now)["items"]
        assert len(items) == 5000 and b"\n" not in now.rstrip()  # complete, still compact
        assert all("topoctl.io/owned" in n["metadata"]["annotations"] for n in items)
    else:
        assert now == old


# --- the YAML reader: libyaml's events, or PyYAML's full loader for the unusual --------

YAML_SHAPES = {
    "kubectl's layout": EXAMPLE_NODES.read_text(),
    "scalars of every kind": (
        "kind: List\nitems:\n- kind: Node\n  metadata: {name: a, labels: {x: 'true'}}\n"
        '  spec: {n: 12, f: 1.5, b: true, z: null, t: 2026-01-02T03:04:05Z, q: "7"}\n'
    ),
    "anchors and aliases": (
        "kind: List\nitems:\n- kind: Node\n  metadata: {name: a, labels: &l {x: y}}\n"
        "- kind: Node\n  metadata: {name: b, labels: *l}\n"
    ),
    "a merge key": ("kind: List\nbase: &b {kind: Node}\nitems:\n- <<: *b\n  metadata: {name: a}\n"),
    "a lone Node": "kind: Node\nmetadata:\n  name: a\n",
}


@pytest.mark.parametrize("shape", sorted(YAML_SHAPES))
def test_the_yaml_reader_reads_as_pyyaml_does(shape: str) -> None:
    from reconciler.adapters import yamlfile

    text = YAML_SHAPES[shape]
    data, spans = yamlfile.load(text)
    assert data == yaml.load(text, Loader=yaml.SafeLoader)
    items = data.get("items", [data])
    assert len(spans) == len(items)
    for span, item in zip(spans, items, strict=True):
        if "*" not in text:  # an item using an alias does not parse alone
            assert yaml.safe_load(" " * span.column + text[span.start : span.end]) == item


@pytest.mark.parametrize("shape", ["flow items", "anchors", "comments between items"])
def test_apply_on_unusual_yaml_writes_what_plan_then_finds_converged(
    sites: Path, tmp_path: Path, shape: str
) -> None:
    doc = example()
    if shape == "flow items":
        text = yaml.safe_dump(doc, default_flow_style=True, width=1 << 20)
    elif shape == "anchors":
        text = "x-shared: &shared v1\n" + (  # and the first node's kind, used by the rest
            EXAMPLE_NODES.read_text()
            .replace("- apiVersion: v1\n", "- apiVersion: *shared\n")
            .replace("  kind: Node\n", "  kind: &node Node\n", 1)
            .replace("  kind: Node\n", "  kind: *node\n")
        )
    else:
        text = EXAMPLE_NODES.read_text().replace(
            "\n- apiVersion: v1", "\n# a node follows\n\n- apiVersion: v1"
        )
    snapshot = tmp_path / "nodes.yaml"
    snapshot.write_text(text)
    result = topoctl("apply", sites, "--cluster", snapshot, "--yes")
    assert result.exit_code == 0, result.output
    after = snapshot.read_text()
    assert yaml.safe_load(after)["items"] and after != text
    if shape == "comments between items":
        assert after.count("# a node follows\n\n- apiVersion: v1") == text.count("# a node follows")
    again = topoctl("plan", sites, "--cluster", snapshot, "--detailed-exitcode")
    assert again.exit_code == 0, again.output


def test_two_yaml_documents_are_a_clear_error(sites: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "nodes.yaml"
    snapshot.write_text(EXAMPLE_NODES.read_text() + "---\nkind: List\nitems: []\n")
    assert_refused(sites, snapshot, "not valid YAML")
