"""PATCH bodies applied the way kube-apiserver applies them.

- JSON merge patch (RFC 7386): a few lines, no library needed.
- JSON patch (RFC 6902): the `jsonpatch` library; a failed op is 422 Invalid,
  as evanphx/json-patch errors are in the real handler.
- Strategic merge patch: a port of the server-side half of
  k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap / mergeSlice with
  MergeParallelList and IgnoreUnmatchedNulls), driven by the real schema's
  `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`. Supported
  directives: `$patch: replace|delete` (maps and list elements),
  `$retainKeys`, `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from tests.apiserver import schema

JSON = dict[str, Any]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
SET_ORDER = "$setElementOrder/"


class PatchError(Exception):
    """A patch the server refuses: `code` is the HTTP status (400, 422 or 500)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; returns a new document."""
    if not isinstance(patch, dict):
        return schema.clone(patch)
    result: JSON = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ----------------------------------------------------------------- json patch


def json_patch(doc: JSON, ops: Any) -> JSON:
    """Apply an RFC 6902 JSON patch with the `jsonpatch` library."""
    if not isinstance(ops, list):
        raise PatchError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        result: Any = jsonpatch.JsonPatch(ops).apply(doc, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(422, str(exc) or type(exc).__name__) from exc
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PatchError(422, f"invalid JSON patch: {exc}") from exc
    if not isinstance(result, dict):
        raise PatchError(422, "the patch replaced the whole object with a non-object")
    return result


# ---------------------------------------------------- strategic merge patch


def strategic_merge_patch(original: JSON, patch: Any, node: JSON | None) -> JSON:
    """Apply a strategic merge patch to `original` using schema `node` (e.g. a Node $ref)."""
    if not isinstance(patch, dict):
        raise PatchError(400, "invalid JSON document")
    return _merge_map(schema.clone(original), schema.clone(patch), node)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "nil"


def _strip(value: Any) -> Any:
    """Drop nulls and `$` directives from a subtree taken verbatim from the patch."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _strategy(field_node: JSON | None) -> tuple[str, str | None]:
    strategies, merge_key = schema.patch_meta(field_node)
    if "merge" in strategies:
        return "merge", merge_key
    if "replace" in strategies:
        return "replace", merge_key
    return "", merge_key


def _merge_map(original: JSON | None, patch: JSON, node: JSON | None) -> JSON:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            replaced: JSON = _strip({k: v for k, v in patch.items() if k != DIRECTIVE})
            return replaced
        if directive == "delete":
            return {}
        raise PatchError(400, f"Unknown patch type: {directive} in map: {patch}")
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, node)
    for raw_key, patch_value in list(patch.items()):
        key = raw_key
        is_delete_list = False
        if raw_key.startswith(DELETE_PRIMITIVE):
            key = raw_key[len(DELETE_PRIMITIVE) :]
            is_delete_list = True
        elif raw_key.startswith("$"):
            continue
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not is_delete_list:
                original[key] = _strip(patch_value)
            continue
        current = original[key]
        if _kind(current) != _kind(patch_value):
            if not is_delete_list:
                original[key] = _strip(patch_value)
            continue
        field_node = schema.child(node, key)
        strategy, merge_key = _strategy(field_node)
        if isinstance(current, dict):
            original[key] = (
                _strip(patch_value)
                if strategy == "replace"
                else _merge_map(current, patch_value, field_node)
            )
        elif isinstance(current, list):
            if strategy == "merge":
                original[key] = _merge_slice(
                    current, patch_value, schema.items(field_node), merge_key, is_delete_list
                )
            elif not is_delete_list:
                original[key] = _strip(patch_value)
        else:
            original[key] = patch_value
    return original


def _apply_retain_keys(original: JSON, patch: JSON) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise PatchError(400, "invalid patch format of retainKeys")
    allowed = set(keep)
    for key, value in patch.items():
        if value is None or key.startswith(("$", DELETE_PRIMITIVE)):
            continue
        if key not in allowed:
            raise PatchError(400, "invalid patch format of retainKeys")
    for key in list(original):
        if key not in allowed:
            del original[key]


def _apply_set_element_order(original: JSON, patch: JSON, node: JSON | None) -> None:
    for raw_key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(raw_key)
        key = raw_key[len(SET_ORDER) :]
        if not isinstance(order, list):
            raise PatchError(400, "invalid patch format of setElementOrder list")
        orig_list = original.get(key)
        patch_list = patch.get(key)
        if orig_list is not None and not isinstance(orig_list, list):
            raise PatchError(500, f"expected a list for {key}")
        if patch_list is not None and not isinstance(patch_list, list):
            raise PatchError(500, f"expected a list for {key}")
        field_node = schema.child(node, key)
        strategy, merge_key = _strategy(field_node)
        if orig_list is not None and patch_list is None:
            merged = orig_list
        elif orig_list is None and patch_list is not None:
            merged = patch_list
        elif orig_list is not None and patch_list is not None:
            if strategy == "merge":
                merged = _merge_slice(
                    orig_list, patch_list, schema.items(field_node), merge_key, False
                )
            else:
                merged = patch_list
        else:
            continue
        kind = _element_kind(orig_list or [], patch_list or [])
        key_name = merge_key if kind == "map" else None
        in_patch, server_only = _partition(merged, order, key_name)
        original[key] = _normalize_order(in_patch, server_only, order, orig_list or [], key_name)
        patch.pop(key, None)


def _element_kind(*lists: list[Any]) -> str:
    found = ""
    for lst in lists:
        for item in lst:
            kind = _kind(item)
            if kind == "slice":
                raise PatchError(422, "lists of lists are not supported")
            if found and kind != found:
                raise PatchError(500, f"list element types are not identical: {lists}")
            found = kind
    return found


def _merge_slice(
    original: list[Any],
    patch: list[Any],
    item_node: JSON | None,
    merge_key: str | None,
    is_delete_list: bool,
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            return [v for v in original if v not in patch]
        merged: list[Any] = []
        for value in original + patch:
            if value not in merged:
                merged.append(value)
        key_name: str | None = None
    else:
        if not merge_key:
            raise PatchError(500, "cannot merge lists without merge key")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_plain_elements(original, patch, merge_key, item_node)
        key_name = merge_key
    in_patch, server_only = _partition(merged, patch, key_name)
    return _normalize_order(in_patch, server_only, patch, original, key_name)


def _merge_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    plain: list[Any] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(500, f"value is not a map: {item}")
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise PatchError(
                    500, f"map: {item} does not contain declared merge key: {merge_key}"
                )
            original = [o for o in original if o.get(merge_key) != item[merge_key]]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError(500, "merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(400, f"Unknown patch type: {directive} in map: {item}")
    if replace:
        return plain, []
    return original, plain


def _merge_plain_elements(
    original: list[Any], patch: list[Any], merge_key: str, item_node: JSON | None
) -> list[Any]:
    result = list(original)
    for item in patch:
        if merge_key not in item:
            raise PatchError(500, f"map: {item} does not contain declared merge key: {merge_key}")
        for i, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                result[i] = _merge_map(existing, item, item_node)
                break
        else:
            result.append(_strip(item))
    return result


def _ident(item: Any, key_name: str | None) -> Any:
    if key_name is None:
        return item
    return item.get(key_name) if isinstance(item, dict) else None


def _index(order: list[Any], item: Any, key_name: str | None) -> int:
    wanted = _ident(item, key_name)
    for i, value in enumerate(order):
        if _ident(value, key_name) == wanted:
            return i
    return -1


def _partition(
    merged: list[Any], by: list[Any], key_name: str | None
) -> tuple[list[Any], list[Any]]:
    wanted = [_ident(v, key_name) for v in by]
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for item in merged:
        (in_patch if _ident(item, key_name) in wanted else server_only).append(item)
    return in_patch, server_only


def _normalize_order(
    in_patch: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    key_name: str | None,
) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved as Go does."""
    right = sorted(in_patch, key=lambda v: _index(patch_order, v, key_name))
    left = sorted(server_only, key=lambda v: _index(server_order, v, key_name))
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], key_name)
            ri = _index(server_order, right[j], key_name)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
