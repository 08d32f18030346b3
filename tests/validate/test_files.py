"""Several files and documents, the output formats, exit codes, symlinks, canonical forms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.adapters.files import read_directory
from reconciler.core.loading.load import load
from reconciler.model.addresses import parse_endpoint
from tests.validate.support import (
    CLUSTER,
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    REPO,
    SITES,
    TOPOCTL,
    E,
    assert_reported,
    invoke,
    site,
    validate_json,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"

TWO_DOCUMENTS = (
    site(KEEPALIVE, "  nodes:", "    - name: gw-1", "      endpoint: 203.0.113.1", name="fsn1")
    + "---\n"  # line 10
    + site(KEEPALIVE, "  nodes:", "    - name: gw-2", "      endpoint: 0.0.0.0", name="ams1")
)


def test_positions_in_a_later_document_count_from_the_top_of_the_file(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": TWO_DOCUMENTS})
    report = validate_json(SITES)
    # The second document starts on line 11; its endpoint value is on line 19.
    assert_reported(
        report.errors, [E(19, 17, "spec.nodes[0].endpoint", "is unspecified")], "errors"
    )
    assert report.exit_code == EXIT_INVALID


def test_errors_in_several_files_are_all_reported_in_one_run(workdir: Path) -> None:
    write_tree(
        workdir / SITES,
        {
            "a.yaml": site("  persistentKeepalive: 20s", name="fsn1"),
            "nested/b.yml": site(KEEPALIVE, "  leader: [nobody]", name="ams1"),
            "nested/deeper/c.yaml": site(KEEPALIVE, "  labels: {tier: [web]}", name="weu"),
            "d.yaml": "kind: Site\n",
            "e.yaml": CLUSTER + "---\n" + CLUSTER,
            "notes.txt": "not a topology file: never read",
        },
    )
    report = validate_json(SITES)
    expected = [
        E(6, 24, "spec.persistentKeepalive", "write 20"),
        E(7, 12, "spec.leader[0]", "leader 'nobody'", "nested/b.yml"),
        E(7, 18, "spec.labels.tier", "expected text, got a list", "nested/deeper/c.yaml"),
        E(1, 1, "apiVersion", "apiVersion is missing", "d.yaml"),
        E(7, 7, "kind", "a second Cluster document (the first is at sites/e.yaml:1)", "e.yaml"),
    ]
    assert_reported(report.errors, expected, "errors")
    assert report.data["files"] == 5
    assert report.exit_code == EXIT_INVALID


def test_sorted_by_file_then_position(workdir: Path) -> None:
    write_tree(
        workdir / SITES,
        {
            "b.yaml": site("  persistentKeepalive: 0", "  labels: {a: 1}", name="b"),
            "a.yaml": site("  persistentKeepalive: 0", name="a"),
        },
    )
    report = validate_json(SITES)
    assert [(e["file"], e["line"]) for e in report.errors] == [
        ("sites/a.yaml", 6),
        ("sites/b.yaml", 6),
        ("sites/b.yaml", 7),
    ]


def test_json_report_shape(workdir: Path) -> None:
    write_tree(
        workdir / SITES,
        {
            "cluster.yaml": CLUSTER,
            "edge.yaml": site(
                KEEPALIVE,
                "  leader: [gw-1]",
                "  allowedLocationIPs: [10.1.0.7, '2001:DB8::/32']",
                "  nodes:",
                "    - name: gw-1",
                "      endpoint: gw.example.com",
                "  pools:",
                "    - name: workers",
                "      selector: {namePattern: 'edge-*', matchLabels: {tier: web}}",
                "  routes:",
                "    - {to: 172.16.0.0/12, dev: eth0}",
            ),
        },
    )
    report = validate_json(SITES)
    assert report.exit_code == EXIT_VALID
    assert report.data == {
        "format_version": 1,
        "valid": True,
        "files": 2,
        "errors": [],
        "warnings": [
            {
                "file": "sites/edge.yaml",
                "line": 11,
                "column": 17,
                "path": "spec.nodes[0].endpoint",
                "code": "dns-endpoint",
                "message": report.warnings[0]["message"],
            }
        ],
        "sites": [
            {
                "name": "edge",
                "file": "sites/edge.yaml",
                "nodes": ["gw-1"],
                "pools": [{"name": "workers", "selector": "tier=web, name~edge-*"}],
                "leaders": ["gw-1"],
                # canonical forms: a bare address is a /32, IPv6 is lowercase
                "allowedLocationIPs": ["10.1.0.7/32", "2001:db8::/32"],
                "routes": 1,
            }
        ],
    }


def test_json_report_when_invalid_has_no_sites(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site("  persistentKeepalive: 0")})
    report = validate_json(SITES)
    assert report.data["valid"] is False
    assert report.data["sites"] == []
    assert set(report.errors[0]) == {"file", "line", "column", "path", "code", "message"}


def test_github_annotations(workdir: Path) -> None:
    write_tree(
        workdir / SITES,
        {
            "a.yaml": site("  nodes:", "    - name: gw", "      endpoint: 0.0.0.0", name="fsn1"),
            "b,c.yaml": site(
                KEEPALIVE, "  nodes:", "    - name: gw-2", "      endpoint: gw.example.com"
            ),
        },
    )
    result = invoke("validate", SITES, "--format", "github")
    assert result.exit_code == EXIT_INVALID
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "::error file=sites/a.yaml,line=8,col=17,title=topoctl endpoint::"
        "spec.nodes[0].endpoint: '0.0.0.0': 0.0.0.0 is unspecified"
    )
    # ',' and ':' are escaped in properties, so a file name cannot break the command.
    assert lines[1].startswith(
        "::warning file=sites/b%2Cc.yaml,line=9,col=17,title=topoctl dns-endpoint::"
        "spec.nodes[0].endpoint: 'gw.example.com' is a DNS name"
    )
    assert lines[2].startswith("invalid: 1 error, 1 warning in 2 file(s)")
    assert len(lines) == 3


def test_github_annotation_without_position(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": b"#" * (1024 * 1024 + 1)})  # refused unread
    result = invoke("validate", SITES, "--format", "github")
    assert result.exit_code == EXIT_INVALID
    assert result.stdout.splitlines()[0].startswith(
        "::error file=sites/a.yaml,title=topoctl file-size::file is 1048577 bytes"
    )


def test_text_output_shows_the_line_and_a_caret(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site("  persistentKeepalive: 20s")})
    result = invoke("validate", SITES)
    assert result.exit_code == EXIT_INVALID
    lines = result.stdout.splitlines()
    at = lines.index(
        "sites/a.yaml:6:24: error: spec.persistentKeepalive: '20s' is not a whole number of "
        "seconds; Kilo would read it as 0 and turn keepalive off - write 20"
    )
    assert lines[at + 1] == "      persistentKeepalive: 20s"
    assert lines[at + 2] == " " * 27 + "^"
    assert lines[-1] == "invalid: 1 error in 1 file(s)"


def test_valid_with_warnings_exits_0(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site("  nodes:", "    - name: gw")})
    result = invoke("validate", SITES)
    assert result.exit_code == EXIT_VALID
    assert "sites/a.yaml:4:9: warning: metadata.name: site 'edge' has no node" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("valid: 1 site, 1 named node, 0 pools")


def test_missing_directory_is_a_usage_error(workdir: Path) -> None:
    result = invoke("validate", "no-such-dir")
    assert result.exit_code == EXIT_USAGE
    assert "topoctl: error: no-such-dir: no such directory" in result.stderr


def test_unknown_format_is_a_usage_error(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site(KEEPALIVE)})
    result = invoke("validate", SITES, "--format", "yaml")
    assert result.exit_code == EXIT_USAGE
    assert "Invalid value for '--format'" in result.stderr


def test_a_single_file_can_be_validated(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site("  persistentKeepalive: 0")})
    report = validate_json(f"{SITES}/a.yaml")
    assert [(e["file"], e["line"], e["column"]) for e in report.errors] == [("sites/a.yaml", 6, 24)]


def test_symlinks_leading_outside_the_directory_are_not_followed(workdir: Path) -> None:
    outside = write_tree(
        workdir / "outside",
        {"bad.yaml": "this: [is not, valid\n", "more/bad.yaml": "kind: Nope\n"},
    )
    write_tree(workdir / SITES, {"a.yaml": site(KEEPALIVE)})
    (workdir / SITES / "linked.yaml").symlink_to(outside / "bad.yaml")
    (workdir / SITES / "linked-dir").symlink_to(outside / "more", target_is_directory=True)
    report = validate_json(SITES)
    assert report.errors == []
    assert report.exit_code == EXIT_VALID
    assert sorted((w["file"], w["code"]) for w in report.warnings) == [
        ("sites/linked-dir", "symlink-outside"),
        ("sites/linked.yaml", "symlink-outside"),
    ]
    assert all("not followed" in w["message"] for w in report.warnings)


def test_symlinks_inside_the_directory_are_followed(workdir: Path) -> None:
    write_tree(workdir / SITES, {"real/a.yaml": site("  persistentKeepalive: 0")})
    (workdir / SITES / "alias").symlink_to(workdir / SITES / "real", target_is_directory=True)
    report = validate_json(f"{SITES}/alias")
    assert [(e["file"], e["line"]) for e in report.errors] == [("sites/alias/a.yaml", 6)]


def test_dangling_symlinks_and_loops(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site("  persistentKeepalive: 0")})
    (workdir / SITES / "gone.yaml").symlink_to("missing.yaml")
    (workdir / SITES / "loop").symlink_to(".", target_is_directory=True)
    report = validate_json(SITES)
    assert [(e["file"], e["line"]) for e in report.errors] == [("sites/a.yaml", 6)]
    assert [(w["file"], w["code"], w["message"]) for w in report.warnings] == [
        ("sites/gone.yaml", "symlink-dangling", "dangling symlink to missing.yaml")
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads directories whatever their mode")
def test_an_unreadable_directory_is_an_error(workdir: Path) -> None:
    locked = write_tree(workdir / SITES / "locked", {"a.yaml": site("  persistentKeepalive: 5")})
    locked.chmod(0)
    try:
        report = validate_json(SITES)
    finally:
        locked.chmod(0o755)
    assert [(e["file"], e["code"]) for e in report.errors] == [("sites/locked", "read")]
    assert report.exit_code == EXIT_INVALID


def test_canonical_forms_and_the_mesh_port(workdir: Path) -> None:
    """What Kilo gets: /32 and /128 CIDRs, lowercase IPv6, a bare host with the mesh port."""
    write_tree(
        workdir / SITES,
        {
            "cluster.yaml": CLUSTER + "spec:\n  mesh:\n    port: 51821\n",
            "a.yaml": site(
                KEEPALIVE,
                "  allowedLocationIPs: [192.168.50.7, '2001:DB8::1']",
                "  nodes:",
                "    - name: gw-1",
                "      endpoint: 203.0.113.1",
                "      internalIP: 10.0.0.2",
                "    - name: gw-2",
                "      endpoint: '[2001:DB8::2]:0051820'",
                "      internalIP: 2001:DB8::2",
                "  routes:",
                "    - {to: 10.9.0.1, via: 10.0.0.1}",
                "    - {to: '2001:DB8:0:0::/64', via: '2001:DB8::1'}",
            ),
        },
    )
    files, notes = read_directory(Path(SITES))
    result = load(files, notes)
    assert result.topology is not None, result.diagnostics
    spec = next(s for s in result.topology.sites if s.name == "edge").spec
    port = result.topology.cluster.spec.mesh.port
    assert spec.allowed_location_ips == ("192.168.50.7/32", "2001:db8::1/128")
    assert [n.internal_ip for n in spec.nodes] == ["10.0.0.2/32", "2001:db8::2/128"]
    assert [n.endpoint for n in spec.nodes] == ["203.0.113.1", "[2001:db8::2]:51820"]
    assert [parse_endpoint(n.endpoint or "").render(port) for n in spec.nodes] == [
        "203.0.113.1:51821",
        "[2001:db8::2]:51820",
    ]
    assert [(r.to, r.via) for r in spec.routes] == [
        ("10.9.0.1/32", "10.0.0.1"),
        ("2001:db8::/64", "2001:db8::1"),
    ]


def test_unknown_field_hint_comes_from_the_mapping_it_is_in(workdir: Path) -> None:
    # 'labels' is a field of spec, not of metadata: no 'did you mean labels?' there.
    write_tree(
        workdir / SITES,
        {"a.yaml": site(KEEPALIVE).replace("  name: edge\n", "  name: edge\n  labels: {}\n")},
    )
    report = validate_json(SITES)
    assert [(e["line"], e["column"], e["path"], e["message"]) for e in report.errors] == [
        (5, 3, "metadata.labels", "unknown field 'labels'")
    ]


BAD_INPUTS = {
    "empty-key": "? \n: x\n",
    "alias-to-nowhere": "a: *nowhere\n",
    "sequence-key": "? [a, b]\n: x\n",
    "mapping-key-in-labels": site(KEEPALIVE, "  labels:", "    ? {a: b}", "    : x"),
    "float-key": site(KEEPALIVE, "  labels:", "    1.5: x"),
    "int-key-top-level": "5: x\napiVersion: topoctl.io/v1alpha1\nkind: Site\n",
    "null-spec": site().rstrip("\n") + " ~\n",
    "tags": site(KEEPALIVE, "  labels: !!python/object/apply:os.system ['true']"),
    "binary": "\x00\x01\x02",
    "bom": "\ufeff" + site(KEEPALIVE),
    "only-dashes": "---\n---\n---\n",
    "document-end-marker": site(KEEPALIVE) + "...\n",
    "huge-int": site("  persistentKeepalive: " + "9" * 5000),
    "nan-fraction": CLUSTER + "spec:\n  lifecycle:\n    maxUnreachableFraction: .nan\n",
    "directive": "%YAML 1.1\n---\n" + site(KEEPALIVE),
    "bad-directive": "%YAML 9.9\n---\n" + site(KEEPALIVE),
    "anchors-everywhere": site("  persistentKeepalive: &k 25", "  labels: {a: *k}"),
    "merge-keys": site(KEEPALIVE, "  labels: &l {a: b}", "  annotations: {<<: *l}"),
}


@pytest.mark.parametrize("text", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_odd_input_never_crashes(workdir: Path, text: str) -> None:
    write_tree(workdir / SITES, {"a.yaml": text})
    for fmt in ("text", "json", "github"):
        result = invoke("validate", SITES, "--format", fmt)
        assert result.exit_code in (EXIT_VALID, EXIT_INVALID), result.output


@pytest.mark.skipif(not TOPOCTL.exists(), reason=f"{TOPOCTL} is not installed")
def test_end_to_end_with_the_installed_command(tmp_path: Path) -> None:
    """The console script: the example topology, the same plus a broken file, no directory."""

    def topoctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TOPOCTL), *args], cwd=cwd, capture_output=True, text=True, check=False
        )

    ok = topoctl("validate", "sites", cwd=REPO)
    assert ok.returncode == EXIT_VALID, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("valid: ")

    shutil.copytree(REPO / "sites", tmp_path / "sites")
    write_tree(
        tmp_path / "sites", {"zz-broken.yaml": site("  persistentKeepalive: 10s", name="zz")}
    )
    bad = topoctl("validate", "sites", "--format", "json", cwd=tmp_path)
    assert bad.returncode == EXIT_INVALID, bad.stderr
    errors = json.loads(bad.stdout)["errors"]
    assert [(e["file"], e["line"], e["column"]) for e in errors] == [
        ("sites/zz-broken.yaml", 6, 24)
    ]
    assert "write 10" in errors[0]["message"]
    text = topoctl("validate", "sites", cwd=tmp_path)  # not a terminal: no line is wrapped
    assert text.returncode == EXIT_INVALID
    assert (
        "sites/zz-broken.yaml:6:24: error: spec.persistentKeepalive: '10s' is not a whole "
        "number of seconds; Kilo would read it as 0 and turn keepalive off - write 10"
    ) in text.stdout.splitlines()

    missing = topoctl("validate", "nowhere", cwd=tmp_path)
    assert missing.returncode == EXIT_USAGE
    assert "nowhere: no such directory" in missing.stderr
    for run in (ok, bad, text, missing):
        assert "Traceback" not in run.stdout + run.stderr


def test_a_configmap_volume_is_read_once_and_hidden_directories_are_skipped(
    workdir: Path,
) -> None:
    """A ConfigMap volume holds ``name -> ..data/name`` beside the ``..<timestamp>/``
    directory ``..data`` points at; .git is no topology either. Each file counts once."""
    root = workdir / "sites"
    stamp = root / "..2026_12_03_10_00_00.1"
    stamp.mkdir(parents=True)
    (stamp / "edge.yaml").write_text(site("  persistentKeepalive: 25"))
    (root / "..data").symlink_to(stamp.name)
    (root / "edge.yaml").symlink_to("..data/edge.yaml")
    (root / ".git").mkdir()
    (root / ".git" / "broken.yaml").write_text("kind: [")
    result = invoke("validate", "sites")
    assert result.exit_code == 0, result.output
    assert "valid: 1 site" in result.output and "in 1 file(s)" in result.output
