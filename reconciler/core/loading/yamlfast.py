"""The fast reader: libyaml's C parser, for files it is sure to read as the full one would.

:func:`fast_documents` gives every document of a file as plain data, with YAML 1.2
scalar resolution, or None - and then the full reader in :mod:`reconciler.core.loading.yamldoc`
takes the whole file: a syntax error, a duplicate key, an alias, a written tag, a
directive, a merge key, a number or date in an unusual spelling, a non-text key, a
limit. Declining costs time, never correctness.
"""

from __future__ import annotations

import re
from typing import Any

import yaml as libyaml
from ruamel.yaml.nodes import ScalarNode as RuamelScalarNode
from ruamel.yaml.resolver import VersionedResolver


class _DeclinedError(Exception):
    """The fast reader is not sure to match the full reader here: use the full one."""


_C_LOADER = getattr(libyaml, "CSafeLoader", None)
_YAML11 = libyaml.resolver.Resolver()
_YAML12 = VersionedResolver(version=(1, 2))
_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SIMPLE_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_SIMPLE_FLOAT = re.compile(r"[-+]?[0-9]+\.[0-9]+")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def fast_documents(
    text: str, max_documents: int, max_nodes: int, max_depth: int
) -> list[Any] | None:
    """Every document as plain data, or None when the full reader must take the file."""
    if _C_LOADER is None or text.startswith("%") or "\n%" in text:
        return None  # a directive (or a line that looks like one): the full reader judges it
    try:
        if "!" in text and _has_tag(text):
            return None  # a node's tag does not say it was written (``! {}``): decline
        nodes = list(libyaml.compose_all(text, Loader=_C_LOADER))
        if len(nodes) > max_documents:
            return None
        budget = [max_nodes * len(nodes), max_depth]
        return [_fast_plain(node, 0, budget, set()) for node in nodes]
    except (_DeclinedError, libyaml.YAMLError, RecursionError, ValueError):
        return None


def _has_tag(text: str) -> bool:
    assert _C_LOADER is not None
    return any(isinstance(t, libyaml.TagToken) for t in libyaml.scan(text, Loader=_C_LOADER))


def _fast_plain(node: Any, depth: int, budget: list[int], seen: set[int]) -> Any:
    budget[0] -= 1  # [values left, deepest nesting allowed]
    if depth > budget[1] or budget[0] < 0 or id(node) in seen:
        raise _DeclinedError  # a limit, or an alias (a node met twice)
    seen.add(id(node))
    if isinstance(node, libyaml.ScalarNode):
        return _fast_scalar(node)
    if isinstance(node, libyaml.SequenceNode):
        if node.tag != _SEQ:
            raise _DeclinedError
        return [_fast_plain(item, depth + 1, budget, seen) for item in node.value]
    if isinstance(node, libyaml.MappingNode) and node.tag == _MAP:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _fast_plain(key_node, depth + 1, budget, seen)
            if not isinstance(key, str) or key in out:
                raise _DeclinedError  # non-text or duplicate key: the full reader reports it
            out[key] = _fast_plain(value_node, depth + 1, budget, seen)
        return out
    raise _DeclinedError


def _fast_scalar(node: Any) -> Any:
    value: str = node.value
    plain = not node.style  # libyaml reports plain scalars with style "" (PyYAML: None)
    implicit = _YAML11.resolve(libyaml.ScalarNode, value, (plain, not plain))  # type: ignore[no-untyped-call]
    if node.tag != implicit:
        raise _DeclinedError  # an explicit tag
    if not plain:
        return value
    tag = _YAML12.resolve(RuamelScalarNode, value, (True, False))
    if tag == _STR:
        return value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool" and value in _BOOLS:
        return _BOOLS[value]
    if tag == "tag:yaml.org,2002:int" and _SIMPLE_INT.fullmatch(value):
        return int(value)
    if tag == "tag:yaml.org,2002:float" and _SIMPLE_FLOAT.fullmatch(value):
        return float(value)
    raise _DeclinedError
