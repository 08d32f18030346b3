"""Hostile input is refused early and clearly: alias bombs, huge files, deep nesting.

No test measures time. Each input is big enough that, without its limit, the run would
not finish (an alias bomb expands to 10**12 values) or would take far too long.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.core.loading.yamlstrict import MAX_DEPTH, MAX_FILE_BYTES
from tests.validate.support import (
    EXIT_INVALID,
    EXIT_VALID,
    SITES,
    E,
    assert_reported,
    invoke,
    site,
    validate_json,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"


def alias_bomb(levels: int = 12, fan_out: int = 10) -> str:
    """ "Billion laughs": each anchor is a list of ``fan_out`` aliases to the previous one."""
    lines = [KEEPALIVE, "  labels:", f"    l0: &l0 [{', '.join(['lol'] * fan_out)}]"]
    for i in range(1, levels):
        lines.append(f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan_out)}]")
    return site(*lines)


def test_alias_bomb_is_cut_off(workdir: Path) -> None:
    write_tree(workdir / SITES, {"bomb.yaml": alias_bomb(), "ok.yaml": site(KEEPALIVE, name="ok")})
    report = validate_json(SITES)
    assert report.exit_code == EXIT_INVALID
    [error] = report.errors
    assert (error["file"], error["code"]) == (f"{SITES}/bomb.yaml", "limits")
    assert "expands to more than 100000 values" in error["message"]
    assert "alias bomb" in error["message"]
    assert error["line"] >= 8  # somewhere inside the anchors, not a file-level error


def test_merge_key_bomb_is_cut_off(workdir: Path) -> None:
    lines = [KEEPALIVE, "  labels:", "    m0: &m0 {a: 1, b: 2}"]
    for i in range(1, 40):
        lines.append(f"    m{i}: &m{i} {{<<: *m{i - 1}, x: [*m{i - 1}, *m{i - 1}]}}")
    write_tree(workdir / SITES, {"bomb.yaml": site(*lines)})
    report = validate_json(SITES)
    assert [e["code"] for e in report.errors] == ["limits"]
    assert "alias bomb" in report.errors[0]["message"]


def test_aliases_that_stay_small_are_fine(workdir: Path) -> None:
    text = site(
        "  persistentKeepalive: &keepalive 25",
        "  labels: &labels {tier: edge}",
        "  nodes:",
        "    - name: gw",
        "      persistentKeepalive: *keepalive",
        "      labels: *labels",
    )
    write_tree(workdir / SITES, {"a.yaml": text})
    assert validate_json(SITES).exit_code == EXIT_VALID


def test_oversized_file_is_refused_unread(workdir: Path) -> None:
    big = site(KEEPALIVE) + "# " + "x" * MAX_FILE_BYTES + "\n"
    write_tree(workdir / SITES, {"big.yaml": big, "ok.yaml": site("  persistentKeepalive: 0")})
    report = validate_json(SITES)
    assert report.exit_code == EXIT_INVALID
    assert_reported(
        report.errors,
        [
            E(0, 0, "", f"file is {len(big)} bytes; topoctl reads files of at most", "big.yaml"),
            E(6, 24, "spec.persistentKeepalive", "0 is out of range", "ok.yaml"),
        ],
        "errors",
    )
    text = invoke("validate", SITES)
    assert f"{SITES}/big.yaml: error: file is {len(big)} bytes" in text.stdout
    assert "(1 MiB) - split it" in text.stdout


def test_a_file_of_exactly_the_limit_is_read(workdir: Path) -> None:
    head = site(KEEPALIVE) + "# "
    text = head + "x" * (MAX_FILE_BYTES - len(head) - 1) + "\n"
    assert len(text.encode()) == MAX_FILE_BYTES
    write_tree(workdir / SITES, {"a.yaml": text})
    assert validate_json(SITES).exit_code == EXIT_VALID


def test_deep_flow_nesting_is_refused(workdir: Path) -> None:
    depth = 200_000  # ruamel's scanner alone would take minutes over this
    text = site(KEEPALIVE, "  labels: " + "[" * depth + "]" * depth)
    write_tree(workdir / SITES, {"a.yaml": text})
    report = validate_json(SITES)
    [error] = report.errors
    assert error["message"] == f"nesting deeper than {MAX_DEPTH} levels"
    # The document and spec mappings are two levels, so the 63rd '[' opens level 65:
    # refused there, at line 7, column len("  labels: ") + 63.
    assert (error["line"], error["column"]) == (7, 10 + MAX_DEPTH - 1)


def test_deep_block_nesting_is_refused(workdir: Path) -> None:
    # labels: {k0: {k1: {k2: ...}}}, one key per line, each two columns further in.
    keys = ["  " * (level + 2) + f"k{level}:" for level in range(MAX_DEPTH * 3)]
    tail = "  " * (MAX_DEPTH * 3 + 2) + "x"
    write_tree(workdir / SITES, {"a.yaml": site(KEEPALIVE, "  labels:", *keys, tail)})
    report = validate_json(SITES)
    assert [e["message"] for e in report.errors] == [f"nesting deeper than {MAX_DEPTH} levels"]
    # The document, spec and labels mappings are levels 1-3 (labels' starts at k0, line 8):
    # level 65 is the mapping of k62, refused where it starts, on line 70, column 129.
    level_65 = MAX_DEPTH - 2
    assert (report.errors[0]["line"], report.errors[0]["column"]) == (
        8 + level_65,
        2 * level_65 + 5,
    )


def test_very_deep_block_nesting_is_refused(workdir: Path) -> None:
    depth = 100_000  # far deeper than Python's recursion limit
    write_tree(
        workdir / SITES, {"a.yaml": site(KEEPALIVE, "  labels:", "    " + "- " * depth + "x")}
    )
    report = validate_json(SITES)
    assert [e["message"] for e in report.errors] == [f"nesting deeper than {MAX_DEPTH} levels"]
    # Levels 1-2 are the document and spec; the 63rd '- ' opens level 65.
    assert (report.errors[0]["line"], report.errors[0]["column"]) == (8, 5 + 2 * (MAX_DEPTH - 2))
