"""The fast (libyaml) reader either declines a file or reads exactly what the full
(ruamel, YAML 1.2) reader reads: the two can never disagree on a topology's meaning."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.loading.yamldoc import _fast_documents, _full_parse, parse


def full(text: str) -> list[Any]:
    documents, problems = _full_parse("x.yaml", text)
    return [d.data for d in documents] if not problems else ["(error)"]


def agree(text: str) -> None:
    fast = _fast_documents(text)
    if fast is not None:
        assert [d for d in fast if d is not None] == full(text), text


CASES = [
    "a: yes\nb: on\nc: 12\nd: ~\ne: '12'\nf: 1.5\ng:\nh: true\ni: NULL\nj: -3\n",
    "a: 0o17\n",
    "a: 017\n",
    "a: 0x1f\n",
    "a: 1_000\n",
    "a: 1e3\n",
    "a: .inf\n",
    "a: !!str 12\n",
    "a: &x 1\nb: *x\n",
    "a: 1\na: 2\n",
    "<<: {a: 1}\n",
    "x: 2024-01-01\n",
    "k: |\n  text\n",
    "? [a]\n: 1\n",
    "1: a\n",
    "---\n---\na: [1, {b: c}]\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "\ta: 1\n",
    "a: 'x\n",
]


@pytest.mark.parametrize("text", CASES)
def test_fast_reader_declines_or_agrees(text: str) -> None:
    agree(text)


def test_fast_reader_takes_a_plain_topology() -> None:
    text = "apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata: {name: a}\nspec:\n  nodes: []\n"
    assert _fast_documents(text) == full(text)


def test_positions_come_from_the_full_reader_on_demand() -> None:
    documents, _ = parse("x.yaml", "a: 1\n---\nb:\n  c: [1, 2]\n")
    assert documents[1].positions.at(("b", "c", 1)) == (4, 10)


scalars = st.one_of(
    st.text(alphabet="01234567890xob_.eE+-:abcdefnulltrueFALSEyes~ ", max_size=8),
    st.sampled_from(["true", "True", "no", "off", "null", "Null", "~", "0", "-0", "+1", "1.0"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), scalars, max_size=5))
def test_fast_and_full_readers_agree_on_any_scalar(mapping: dict[str, str]) -> None:
    agree("".join(f"{k}: {v}\n" for k, v in mapping.items()))
