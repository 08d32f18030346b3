"""What the YAML reader refuses: tags, directives, bytes that are not text - with places.

topoctl defines no YAML tags. The YAML 1.2 core-schema tags (``!!str``, ``!!int``,
``!!float``, ``!!bool``, ``!!null``, ``!!map``, ``!!seq``) are read as plain YAML
reads them; every other tag (``!Ref``, ``!!binary``, ``!!set``, ``!!python/...``) is an
error, as is any directive but ``%YAML 1.2``. A file reads the same way whichever of the
two readers (libyaml's fast one, ruamel's positioned one) takes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.loading import yamldoc
from tests.validate.support import E, Expect, check_case, site, validate_json, write_tree

KEEPALIVE = "  persistentKeepalive: 25"
UNKNOWN_TAG = "unknown YAML tag"
DIRECTIVE = "directive is refused: topoctl reads every file as YAML 1.2"


def one(text: str, *expected: Expect, id: str) -> object:
    return pytest.param({"a.yaml": text}, expected, id=id)


TAGS = [
    one(
        site(KEEPALIVE, "  nodes:", "    - name: gw", "      endpoint: !Ref gw"),
        E(9, 17, "", f"{UNKNOWN_TAG} '!Ref': topoctl defines no tags"),
        id="local-tag-on-a-value",
    ),
    one(
        site(KEEPALIVE, "  labels: !Labels {tier: infra}"),
        E(7, 11, "", f"{UNKNOWN_TAG} '!Labels'"),
        id="local-tag-on-a-mapping",
    ),
    one(
        site(KEEPALIVE, "  leader: !!set {gw: null}"),
        E(7, 11, "", f"{UNKNOWN_TAG} '!!set'"),
        id="set",
    ),
    one(
        site(KEEPALIVE, "  annotations: {blob: !!binary aGVsbG8=}"),
        E(7, 23, "", f"{UNKNOWN_TAG} '!!binary'"),
        id="binary",
    ),
    one(
        site(KEEPALIVE, "  lifecycle: {after: !!timestamp 2024-01-01}"),
        E(7, 22, "", f"{UNKNOWN_TAG} '!!timestamp'"),
        id="timestamp",
    ),
    one(
        site(KEEPALIVE, "  labels: !!python/object:os.system {}"),
        E(7, 11, "", f"{UNKNOWN_TAG} '!!python/object:os.system'"),
        id="python-object",
    ),
    one(
        site(KEEPALIVE, "  labels: !<tag:example.com,2024:labels> {}"),
        E(7, 11, "", f"{UNKNOWN_TAG} '!<tag:example.com,2024:labels>'"),
        id="verbatim-tag",
    ),
    one(
        site(KEEPALIVE, "  labels: ! {}"),
        E(7, 11, "", f"{UNKNOWN_TAG} '!'"),
        id="non-specific-tag",
    ),
    one("!!\n", E(1, 1, "", f"{UNKNOWN_TAG} '!!'"), id="a-file-of-just-a-tag-handle"),
    one("!!omap\n", E(1, 1, "", f"{UNKNOWN_TAG} '!!omap'"), id="a-file-of-just-omap"),
    one(
        site(KEEPALIVE, "  labels: {tier: !!str 123}", "  nodes:", "    - name: !!str gw"),
        id="core-str-tag-is-read-as-text",
    ),
    one(
        site("  persistentKeepalive: !!int 25", "  labels: !!map {tier: infra}"),
        id="core-int-and-map-tags",
    ),
    one(
        site("  persistentKeepalive: !!int"),
        E(6, 24, "", "cannot read '' as !!int"),
        id="core-int-tag-on-nothing",
    ),
    one(
        site("  persistentKeepalive: !!float x"),
        E(6, 24, "", "cannot read 'x' as !!float"),
        id="core-float-tag-on-text",
    ),
]


@pytest.mark.parametrize(("files", "expected"), TAGS)
def test_tags(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


DIRECTIVES = [
    one(
        "%YAML 1.1\n---\n" + site(KEEPALIVE, "  labels: {tier: yes}"),
        E(1, 1, "", f"'%YAML 1.1' {DIRECTIVE}"),
        id="yaml-1.1",
    ),
    one(
        "%YAML 1.3\n---\n" + site(KEEPALIVE),
        E(1, 1, "", f"'%YAML 1.3' {DIRECTIVE}"),
        id="yaml-1.3",
    ),
    one(
        "%TAG !k! tag:yaml.org,2002:\n---\n" + site(KEEPALIVE),
        E(1, 1, "", f"'%TAG' {DIRECTIVE}"),
        id="tag-directive",
    ),
    one(
        site(KEEPALIVE) + "---\n%YAML 1.1\n---\n" + site(KEEPALIVE, name="core"),
        E(8, 1, "", f"'%YAML 1.1' {DIRECTIVE}"),
        id="in-a-later-document",
    ),
    one("%YAML 1.2\n---\n" + site(KEEPALIVE), id="yaml-1.2-is-accepted"),
    one(
        site(KEEPALIVE, "  annotations:", "    note: |", "      %YAML 1.1 is just text here"),
        id="a-percent-line-inside-a-block-scalar-is-text",
    ),
]


@pytest.mark.parametrize(("files", "expected"), DIRECTIVES)
def test_directives(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


BOTH_READERS = [
    "%YAML 1.1\n---\na: yes\n",
    "%YAML 1.2\n---\na: yes\nb: 0o17\n",
    "a: !Ref gw\n",
    "a: !!str 123\nb: !!int '7'\n",
    "a: !!binary aGVsbG8=\n",
    "%TAG !e! tag:example.com:\n---\na: !e!x 1\n",
    "a: yes\nb: on\nc: 0x1F\nd: ~\ne: 2024-01-01\n",
    "!!\n",
    "a: ! {}\nb: ! 12\n",
]


@pytest.mark.parametrize("text", BOTH_READERS)
def test_both_readers_read_a_file_the_same_way(text: str) -> None:
    """The fast reader either declines or agrees with the full one, data and errors."""
    fast = yamldoc._fast_documents(text)
    full, problems = yamldoc._full_parse("a.yaml", text)
    if fast is not None:
        assert not problems
        assert fast == [d.data for d in full]
    whole, whole_problems = yamldoc.parse("a.yaml", text)
    assert [d.data for d in whole] == [d.data for d in full]
    assert whole_problems == problems


BAD_BYTES = [
    pytest.param(
        b"apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata:\n  name: \xffedge\n",
        (4, 9),
        "not UTF-8 text: byte 0xff (invalid start byte, byte offset 61)",
        id="latin-1-byte",
    ),
    pytest.param(
        "kind: Site\nmetadata: {name: \u00e9dge}\n".encode()[:-7] + b"\xc3(\n",
        (2, 18),
        "not UTF-8 text: byte 0xc3 (invalid continuation byte",
        id="truncated-sequence-after-multibyte-text",
    ),
    pytest.param(b"\xff\xfe\x00k", (1, 1), "byte 0xff", id="utf-16-bom"),
    pytest.param(
        b"apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata:\n  name: ed\x00ge\n",
        (4, 11),
        "U+0000 NULL is not allowed in YAML text",
        id="nul",
    ),
    pytest.param(
        b"kind: Site\nmetadata:\n  name: \xc3\xa9\x07\n",
        (3, 10),
        "U+0007 a control character is not allowed",
        id="bell-after-multibyte",
    ),
]


@pytest.mark.parametrize(("content", "where", "fragment"), BAD_BYTES)
def test_bytes_that_are_not_text_give_line_and_column(
    workdir: Path, content: bytes, where: tuple[int, int], fragment: str
) -> None:
    write_tree(workdir / "sites", {"a.yaml": content})
    report = validate_json("sites")
    assert report.exit_code == 1
    [error] = report.errors
    assert (error["file"], error["line"], error["column"]) == ("sites/a.yaml", *where)
    assert fragment in error["message"]


def test_tags_never_crash_the_reader() -> None:
    """Core tags on the wrong kind of node, and what ruamel's constructors choke on."""
    for text in ("!!int 0x", "!!float", "!!bool {}", "!!map [a]", "!!seq {a: 1}", "- !!"):
        _, problems = yamldoc.parse("a.yaml", text)
        assert problems, text
        assert all(p.line >= 1 and p.message for p in problems), (text, problems)
