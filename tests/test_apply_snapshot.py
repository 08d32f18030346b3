"""``topoctl plan | apply | snapshot`` end to end against snapshot files.

Every test works on a temporary copy of the example snapshot and topology, through the
real command line (click's runner; one test runs the installed entry point), and checks
what ends up in the file, byte for byte where that is the promise.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_NODES = ROOT / "examples" / "nodes.yaml"
EXAMPLE_SITES = ROOT / "sites"
PLAIN_ENV: dict[str, str | None] = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1"}
HEADER_COMMENT = "# exported from prod on 2026-11-26; topoctl keeps this line\n"
# Nodes the example topology leaves alone: unassigned.
UNTOUCHED = ("build-runner-1",)


def topoctl(*args: str | Path) -> Result:
    """Run the CLI; any exception other than a clean exit is a bug."""
    result = CliRunner(env=PLAIN_ENV).invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl {args} crashed") from result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE_SITES, tmp_path / "sites"))


@pytest.fixture
def yaml_snapshot(tmp_path: Path) -> Path:
    """The example snapshot with comments, as a person might keep it in a repository."""
    text = EXAMPLE_NODES.read_text()
    text = text.replace(
        "    name: build-runner-1\n", "    name: build-runner-1  # the CI runner, not in the mesh\n"
    )
    path = tmp_path / "nodes.yaml"
    path.write_text(HEADER_COMMENT + text)
    return path


@pytest.fixture
def json_snapshot(tmp_path: Path) -> Path:
    """The example snapshot as ``kubectl get nodes -o json`` writes it (indent 4)."""
    path = tmp_path / "nodes.json"
    data = yaml.safe_load(EXAMPLE_NODES.read_text())
    path.write_text(json.dumps(data, indent=4) + "\n")
    return path


def node_chunks(text: str, fmt: str) -> dict[str, str]:
    """The text of each node in a snapshot file, by node name."""
    start = re.compile(r"^- apiVersion: v1$" if fmt == "yaml" else r"^        \{$", re.M)
    starts = [m.start() for m in start.finditer(text)] + [len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(starts)]
    names = re.compile(
        r"^    name: ([\w.-]+)" if fmt == "yaml" else r'^ {16}"name": "([^"]+)"', re.M
    )
    return {m.group(1): chunk for chunk in chunks if (m := names.search(chunk))}


def status_block(chunk: str, fmt: str) -> str:
    """A node's status, which apply never writes (``status:`` to the end of the node)."""
    return chunk[chunk.index("  status:" if fmt == "yaml" else '"status": {') :]


def plan_json(sites: Path, snapshot: Path, *extra: str) -> dict[str, Any]:
    result = topoctl("plan", sites, "--cluster", snapshot, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def written_nodes(sites: Path, snapshot: Path) -> list[str]:
    return sorted({c["node"] for c in plan_json(sites, snapshot)["changes"]})


def node_in(snapshot: Path, name: str) -> dict[str, Any]:
    data = yaml.safe_load(snapshot.read_text())
    node: dict[str, Any] = next(n for n in data["items"] if n["metadata"]["name"] == name)
    return node


def edit_snapshot(snapshot: Path, old: str, new: str, count: int = 1) -> None:
    text = snapshot.read_text()
    assert text.count(old) >= count, old
    snapshot.write_text(text.replace(old, new, count))


# --- apply, then nothing left to do ----------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_apply_then_plan_finds_nothing_to_do(
    sites: Path, fmt: str, request: pytest.FixtureRequest
) -> None:
    snapshot: Path = request.getfixturevalue(f"{fmt}_snapshot")
    before = topoctl("plan", sites, "--cluster", snapshot, "--detailed-exitcode")
    assert before.exit_code == 2
    applied = topoctl("apply", sites, "--cluster", snapshot, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Applied: 9 node(s) written, 0 failed." in applied.stdout
    after = topoctl("plan", sites, "--cluster", snapshot, "--detailed-exitcode")
    assert after.exit_code == 0, after.output
    assert "Plan: 0 nodes to change, 0 keys; 1 conflict." in after.stdout
    # What is left is reported, not written: the Talos conflict on ams1-cp-2.
    assert plan_json(sites, snapshot)["summary"]["conflicts"] == 1


def test_detailed_exitcode_is_2_with_changes_and_0_without(
    sites: Path, yaml_snapshot: Path
) -> None:
    assert topoctl("plan", sites, "--cluster", yaml_snapshot).exit_code == 0
    assert topoctl("plan", sites, "--cluster", yaml_snapshot, "--detailed-exitcode").exit_code == 2
    topoctl("apply", sites, "--cluster", yaml_snapshot, "--yes")
    assert topoctl("plan", sites, "--cluster", yaml_snapshot, "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize(
    "breakage",
    [
        "invalid topology",
        "missing snapshot",
        "missing topology directory",
        "snapshot that is not a node list",
        "unreadable snapshot",
        "plan error",
    ],
)
def test_detailed_exitcode_is_1_on_every_error(
    sites: Path, yaml_snapshot: Path, breakage: str
) -> None:
    snapshot, topology = yaml_snapshot, sites
    if breakage == "invalid topology":
        edit_snapshot(sites / "hetzner.yaml", "persistentKeepalive: 25", "persistentKeepalive: 25s")
    elif breakage == "missing snapshot":
        snapshot = yaml_snapshot.with_name("absent.yaml")
    elif breakage == "missing topology directory":
        topology = sites.with_name("absent")
    elif breakage == "snapshot that is not a node list":
        snapshot.write_text("apiVersion: v1\nkind: ConfigMap\n")
    elif breakage == "unreadable snapshot":
        snapshot.write_text("items: [\n")
    else:  # unassigned nodes are an error under this policy
        edit_snapshot(sites / "cluster.yaml", "unassignedNodes: warn", "unassignedNodes: error")
    result = topoctl("plan", topology, "--cluster", snapshot, "--detailed-exitcode")
    assert result.exit_code == 1, result.output
    assert "error" in result.output


# --- saved plans ----------------------------------------------------------------------


def test_saved_plan_applies_exactly_what_plan_showed(
    sites: Path, yaml_snapshot: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin.yaml"
    shutil.copy(yaml_snapshot, twin)
    saved = tmp_path / "p.json"
    shown = topoctl("plan", sites, "--cluster", yaml_snapshot, "--out", saved)
    assert shown.exit_code == 0 and saved.is_file()
    applied = topoctl("apply", saved, "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Applied: 9 node(s) written, 0 failed." in applied.stdout
    # The same outcome as converging from the topology directly.
    assert topoctl("apply", sites, "--cluster", twin, "--yes").exit_code == 0
    assert yaml_snapshot.read_bytes() == twin.read_bytes()


def test_saved_plan_ignores_later_edits_to_the_topology(
    sites: Path, yaml_snapshot: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "p.json"
    topoctl("plan", sites, "--cluster", yaml_snapshot, "--out", saved)
    edit_snapshot(sites / "hetzner.yaml", "persistentKeepalive: 25", "persistentKeepalive: 30")
    assert topoctl("apply", saved, "--yes").exit_code == 0
    worker = node_in(yaml_snapshot, "fsn1-worker-x9m4t")
    assert worker["metadata"]["annotations"]["kilo.squat.ai/persistent-keepalive"] == "25"


def _bump_resource_version(snapshot: Path) -> None:
    edit_snapshot(snapshot, "resourceVersion: '1006'", "resourceVersion: '2006'")


def _edit_label_and_version(snapshot: Path) -> None:
    edit_snapshot(
        snapshot,
        "      kubernetes.io/hostname: fsn1-gw-1\n",
        "      kubernetes.io/hostname: fsn1-gw-1\n      example.com/by-hand: 'yes'\n",
    )
    edit_snapshot(snapshot, "resourceVersion: '1005'", "resourceVersion: '1105'")


def _add_node(snapshot: Path) -> None:
    data = yaml.safe_load(snapshot.read_text())
    extra = json.loads(json.dumps(data["items"][-1]))
    extra["metadata"].update(name="build-runner-2", uid="uid-new", resourceVersion="3000")
    data["items"].append(extra)
    snapshot.write_text(yaml.safe_dump(data))


def _remove_node(snapshot: Path) -> None:
    data = yaml.safe_load(snapshot.read_text())
    data["items"] = [n for n in data["items"] if n["metadata"]["name"] != "build-runner-1"]
    snapshot.write_text(yaml.safe_dump(data))


def _replace_node(snapshot: Path) -> None:
    edit_snapshot(
        snapshot,
        "uid: 6f1c2d3e-0000-4000-8000-000000001008",
        "uid: 6f1c2d3e-0000-4000-8000-00000000ffff",
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_bump_resource_version, "fsn1-worker-7kq2p moved"),
        (_edit_label_and_version, "fsn1-gw-1 moved"),
        (_add_node, "build-runner-2 is new"),
        (_remove_node, "build-runner-1 is gone"),
        (_replace_node, "weu-gw-1 was replaced"),
    ],
)
def test_stale_saved_plan_is_refused_and_nothing_is_written(
    sites: Path, yaml_snapshot: Path, tmp_path: Path, change: Any, says: str
) -> None:
    saved = tmp_path / "p.json"
    assert topoctl("plan", sites, "--cluster", yaml_snapshot, "--out", saved).exit_code == 0
    change(yaml_snapshot)
    moved = yaml_snapshot.read_bytes()
    result = topoctl("apply", saved, "--yes")
    assert result.exit_code == 1
    assert says in result.output and "run plan again" in result.output
    assert yaml_snapshot.read_bytes() == moved


def test_saved_plan_still_applies_when_only_unwritten_nodes_moved(
    sites: Path, yaml_snapshot: Path, tmp_path: Path
) -> None:
    """Kilo rewrites last-seen everywhere every 30 s: only the nodes written must hold."""
    saved = tmp_path / "p.json"
    topoctl("plan", sites, "--cluster", yaml_snapshot, "--out", saved)
    edit_snapshot(yaml_snapshot, "resourceVersion: '1010'", "resourceVersion: '5010'")
    assert topoctl("apply", saved, "--yes").exit_code == 0


def test_damaged_saved_plan_is_an_error_not_a_crash(tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    saved.write_text('{"kind": "topoctl-plan", "format_version": 2, "plan": {}}')
    result = topoctl("apply", saved, "--yes")
    assert result.exit_code == 1
    assert "saved plan is damaged" in result.output


# --- the snapshot file keeps what apply does not change --------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_apply_keeps_unrelated_text_byte_for_byte(
    sites: Path, fmt: str, request: pytest.FixtureRequest
) -> None:
    snapshot: Path = request.getfixturevalue(f"{fmt}_snapshot")
    before_text = snapshot.read_text()
    written = written_nodes(sites, snapshot)
    assert topoctl("apply", sites, "--cluster", snapshot, "--yes").exit_code == 0
    after_text = snapshot.read_text()
    before, after = node_chunks(before_text, fmt), node_chunks(after_text, fmt)
    assert sorted(before) == sorted(after) and len(before) == 10
    for name in UNTOUCHED:
        assert name not in written
        assert after[name] == before[name]
    for name in written:
        assert after[name] != before[name]
        assert status_block(after[name], fmt) == status_block(before[name], fmt)
    if fmt == "yaml":
        assert after_text.startswith(HEADER_COMMENT)
        assert "name: build-runner-1  # the CI runner, not in the mesh\n" in after_text
    else:
        assert after_text.endswith("}\n") and '\n    "items": [\n' in after_text


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_apply_bumps_the_resource_version_of_written_nodes_only(
    sites: Path, fmt: str, request: pytest.FixtureRequest
) -> None:
    snapshot: Path = request.getfixturevalue(f"{fmt}_snapshot")

    def versions() -> dict[str, str]:
        items = yaml.safe_load(snapshot.read_text())["items"]
        return {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in items}

    written, before = written_nodes(sites, snapshot), versions()
    topoctl("apply", sites, "--cluster", snapshot, "--yes")
    after = versions()
    assert [n for n in after if after[n] != before[n]] == sorted(written, key=list(after).index)
    assert len(set(after.values())) == len(after)  # every write got a version of its own


def test_no_op_apply_does_not_touch_the_file(sites: Path, yaml_snapshot: Path) -> None:
    topoctl("apply", sites, "--cluster", yaml_snapshot, "--yes")
    converged, stat = yaml_snapshot.read_bytes(), yaml_snapshot.stat()
    result = topoctl("apply", sites, "--cluster", yaml_snapshot, "--yes")
    assert result.exit_code == 0
    assert "Applied" not in result.stdout  # nothing to apply, nothing said about writing
    assert yaml_snapshot.read_bytes() == converged
    assert (yaml_snapshot.stat().st_mtime_ns, yaml_snapshot.stat().st_ino) == (
        stat.st_mtime_ns,
        stat.st_ino,
    )


def test_apply_without_yes_on_a_non_terminal_refuses_and_writes_nothing(
    sites: Path, yaml_snapshot: Path
) -> None:
    original = yaml_snapshot.read_bytes()
    result = topoctl("apply", sites, "--cluster", yaml_snapshot)
    assert result.exit_code == 2
    assert "pass --yes" in result.output
    assert yaml_snapshot.read_bytes() == original


def test_apply_refuses_a_plan_with_errors(sites: Path, yaml_snapshot: Path) -> None:
    edit_snapshot(sites / "cluster.yaml", "unassignedNodes: warn", "unassignedNodes: error")
    original = yaml_snapshot.read_bytes()
    result = topoctl("apply", sites, "--cluster", yaml_snapshot, "--yes")
    assert result.exit_code == 1
    assert "nothing applied" in result.output
    assert yaml_snapshot.read_bytes() == original


# --- plan --base: what a pull request changes -------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_plan_base_shows_the_desired_state_delta_of_a_change(
    tmp_path: Path, yaml_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE_SITES, repo / "sites")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    edit_snapshot(
        repo / "sites" / "hetzner.yaml", "persistentKeepalive: 25", "persistentKeepalive: 30"
    )
    git(repo, "commit", "-qam", "keepalive 30")
    monkeypatch.chdir(repo)

    text = topoctl("plan", "sites", "--cluster", yaml_snapshot, "--base", "HEAD~1")
    assert text.exit_code == 0, text.output
    assert "alters the desired state of 2 node(s)" in text.stdout
    # The two workers change alike: one group.
    assert (
        "  2 nodes of pool hetzner-fsn1/workers (fsn1-worker-7kq2p, fsn1-worker-x9m4t):\n"
        '    annotation kilo.squat.ai/persistent-keepalive: "25" -> "30"\n'
    ) in text.stdout

    data = plan_json(Path("sites"), yaml_snapshot, "--base", "HEAD~1")
    assert data["desired_changes"] == [
        {
            "node": worker,
            "kind": "annotation",
            "key": "kilo.squat.ai/persistent-keepalive",
            "base": "25",
            "head": "30",
        }
        for worker in ("fsn1-worker-7kq2p", "fsn1-worker-x9m4t")
    ]
    unchanged = plan_json(Path("sites"), yaml_snapshot, "--base", "HEAD")
    assert unchanged["desired_changes"] == []


def test_plan_base_with_an_unknown_revision_is_an_error(
    tmp_path: Path, yaml_snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE_SITES, repo / "sites")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    monkeypatch.chdir(repo)
    result = topoctl("plan", "sites", "--cluster", yaml_snapshot, "--base", "no-such-rev")
    assert result.exit_code == 2  # a usage error, as for --rev
    assert "'no-such-rev': no such revision" in result.output


# --- topoctl snapshot ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_snapshot_round_trip_plans_the_same(
    sites: Path, yaml_snapshot: Path, tmp_path: Path, fmt: str
) -> None:
    exported = topoctl("snapshot", "--cluster", yaml_snapshot, "--format", fmt)
    assert exported.exit_code == 0
    copy = tmp_path / f"exported.{fmt}"
    copy.write_text(exported.stdout)
    original, again = yaml.safe_load(yaml_snapshot.read_text()), yaml.safe_load(copy.read_text())
    assert again["kind"] == "List"
    assert again["items"] == original["items"]
    assert plan_json(sites, copy) == plan_json(sites, yaml_snapshot)
    # And the export of the export is the same text.
    assert topoctl("snapshot", "--cluster", copy, "--format", fmt).stdout == exported.stdout


# --- the installed entry point never shows a traceback --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "{sites}", "--cluster", "{tmp}/absent.yaml"],
        ["plan", "{sites}", "--cluster", "{tmp}/garbage.yaml"],
        ["apply", "{tmp}/garbage.json", "--yes"],
        ["apply", "{sites}", "--cluster", "{tmp}/garbage.yaml", "--yes"],
        ["snapshot", "--cluster", "{tmp}/garbage.yaml"],
    ],
)
def test_entry_point_reports_errors_without_a_traceback(
    sites: Path, tmp_path: Path, args: Sequence[str]
) -> None:
    (tmp_path / "garbage.yaml").write_text("items: {not: [a, list]}\n")
    (tmp_path / "garbage.json").write_text("{not json")
    argv = [a.format(sites=sites, tmp=tmp_path) for a in args]
    run = entry_point(*argv)
    assert run.returncode in (1, 2), run
    assert "Traceback" not in run.stderr + run.stdout
    assert "internal error" not in run.stderr
    assert run.stderr.startswith("topoctl: error: ")


def entry_point(
    *argv: str | Path,
    stdout: Any = subprocess.PIPE,
    preexec: Any = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a child process (plan and apply end it through
    ``leave``, without the heap's teardown)."""
    return subprocess.run(
        [sys.executable, "-c", "from reconciler.cli import run; run()", *map(str, argv)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=preexec,
        env=env,
    )


def test_a_one_shot_exit_keeps_every_byte_and_the_status(
    sites: Path, json_snapshot: Path, tmp_path: Path
) -> None:
    planned = entry_point(
        "plan", sites, "--cluster", json_snapshot, "--format", "json", "--detailed-exitcode"
    )
    assert planned.returncode == 2, planned.stderr  # changes
    in_process = topoctl("plan", sites, "--cluster", json_snapshot, "--format", "json")
    assert planned.stdout == in_process.stdout
    saved = tmp_path / "plan.json"
    kept = entry_point("plan", sites, "--cluster", json_snapshot, "--out", saved)
    assert kept.returncode == 0, kept.stderr
    applied = entry_point("apply", saved, "--yes")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.rstrip().endswith("written, 0 failed.")
    again = entry_point(
        "plan", sites, "--cluster", json_snapshot, "--format", "json", "--detailed-exitcode"
    )
    assert again.returncode == 0, again.stderr  # the snapshot was written whole
    assert json.loads(again.stdout)["summary"]["has_changes"] is False


def test_a_one_shot_exit_reports_output_it_cannot_flush(sites: Path, json_snapshot: Path) -> None:
    with open("/dev/full", "w") as full:
        run = entry_point("plan", sites, "--cluster", json_snapshot, stdout=full)
    assert run.returncode == 1
    assert run.stderr.strip() == "topoctl: error: writing the output: No space left on device"


def test_a_one_shot_exit_without_a_stdout_is_quiet(sites: Path, json_snapshot: Path) -> None:
    """Started with its stdout closed (``>&-``), the plan has nowhere to go: as before,
    nothing is printed and the status stands."""
    for fmt in ("text", "json"):
        run = entry_point(
            "plan",
            sites,
            "--cluster",
            json_snapshot,
            "--format",
            fmt,
            stdout=None,
            preexec=lambda: os.close(1),
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""


EMBEDDED_KEYS_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", certificate-authority-data: bm90LWEtY2E=}
users:
- name: u
  user: {client-certificate-data: bm90LWEtY2VydA==, client-key-data: bm90LWEta2V5}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"""


def test_a_one_shot_exit_still_deletes_the_credential_files(sites: Path, tmp_path: Path) -> None:
    """The kubernetes client writes a kubeconfig's embedded keys to temporary files and
    deletes them in an exit hook: the quick exit runs the hooks."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(EMBEDDED_KEYS_KUBECONFIG)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = entry_point(
        "plan", sites, "--kubeconfig", kubeconfig, env={**os.environ, "TMPDIR": str(scratch)}
    )
    assert run.returncode == 1, run.stderr  # nothing listens there
    assert run.stderr.startswith("topoctl: error: "), run.stderr
    assert list(scratch.iterdir()) == []


# --- the capture time ------------------------------------------------------------------

CAPTURED = "  annotations:\n    topoctl.io/captured-at: '{at}'\n"


def with_capture_time(snapshot: Path, at: str) -> None:
    """Record a capture time on the List, as `topoctl snapshot` does."""
    text = snapshot.read_text()
    if snapshot.suffix == ".json":
        data = json.loads(text)
        data.setdefault("metadata", {})["annotations"] = {"topoctl.io/captured-at": at}
        snapshot.write_text(json.dumps(data, indent=4) + "\n")
    else:
        assert text.count("\nmetadata:\n") == 1
        snapshot.write_text(text.replace("\nmetadata:\n", "\nmetadata:\n" + CAPTURED.format(at=at)))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_plan_judges_kilo_at_the_capture_time(
    sites: Path, fmt: str, request: pytest.FixtureRequest
) -> None:
    """The example's nodes checked in at 09:00:00. Read five seconds later every leader
    is known; read two minutes later, none of them is fresh any more."""
    snapshot: Path = request.getfixturevalue(f"{fmt}_snapshot")
    median = plan_json(sites, snapshot)
    assert median["now"] == {"at": 1795683600, "time": "2026-11-26T09:00:00Z", "source": "median"}
    with_capture_time(snapshot, "2026-11-26T09:00:05Z")
    soon = plan_json(sites, snapshot)
    assert soon["now"] == {"at": 1795683605, "time": "2026-11-26T09:00:05Z", "source": "captured"}
    assert [s["leader"]["predicted"] for s in soon["sites"]] == [
        "weu-gw-1",
        "fsn1-gw-1",
        "ams1-gw-1",
    ]
    text = topoctl("plan", sites, "--cluster", snapshot).stdout
    assert text.splitlines()[1] == "now: 2026-11-26T09:00:05Z (the snapshot's capture time)"
    edit_snapshot(snapshot, "09:00:05Z", "09:02:00Z")
    late = plan_json(sites, snapshot)
    assert late["now"]["source"] == "captured"
    assert [s["leader"]["predicted"] for s in late["sites"]] == [None, None, None]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("yesterday", "'yesterday' is not a time like 2026-11-27T12:00:05Z (RFC 3339)"),
        ("2026-11-26T09:00:05", "has no time zone: write it in UTC"),
    ],
)
def test_an_unreadable_capture_time_is_an_error_with_its_place(
    sites: Path, fmt: str, value: str, why: str, request: pytest.FixtureRequest
) -> None:
    snapshot: Path = request.getfixturevalue(f"{fmt}_snapshot")
    with_capture_time(snapshot, value)
    before = snapshot.read_bytes()
    for args in (("plan", sites), ("apply", sites, "--yes")):
        result = topoctl(*args, "--cluster", snapshot)
        assert result.exit_code == 1, result.output
        assert f"{snapshot}: metadata.annotations.topoctl.io/captured-at: " in result.stderr, (
            result.stderr
        )
        assert why in result.stderr
    assert snapshot.read_bytes() == before


def test_a_snapshot_of_a_snapshot_keeps_its_capture_time(
    sites: Path, yaml_snapshot: Path, tmp_path: Path
) -> None:
    plain = yaml.safe_load(topoctl("snapshot", "--cluster", yaml_snapshot).stdout)
    assert "annotations" not in plain["metadata"]  # the file does not say when: nor does this
    with_capture_time(yaml_snapshot, "2026-11-26T09:00:05Z")
    for fmt in ("yaml", "json"):
        again = topoctl("snapshot", "--cluster", yaml_snapshot, "--format", fmt).stdout
        meta = yaml.safe_load(again)["metadata"]
        assert meta["annotations"] == {"topoctl.io/captured-at": "2026-11-26T09:00:05Z"}
        copy = tmp_path / f"again.{fmt}"
        copy.write_text(again)
        assert plan_json(sites, copy)["now"]["source"] == "captured"
