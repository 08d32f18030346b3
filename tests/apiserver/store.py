"""Objects, the global resourceVersion, watch history and the write pipeline.

Stored objects are never mutated in place: every write stores a new dict, so
history entries, list snapshots and watch queues can share them safely.
All state is guarded by one re-entrant lock; watchers wait on its condition.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.apiserver import crds, errors, schema, validation
from tests.apiserver.errors import ApiError
from tests.apiserver.patching import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from tests.apiserver.resources import (
    DEFAULT_NAMESPACES,
    NAMESPACES,
    RESOURCES,
    ResourceType,
)
from tests.apiserver.selectors import (
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
)

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphabet


def _now() -> datetime:
    return datetime.now(UTC)


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


@dataclass(frozen=True)
class WatchEvent:
    """One committed change; `obj` and `prev` are stored (storage-form) objects."""

    type: str  # ADDED | MODIFIED | DELETED
    rv: int
    storage: str
    key: Key
    obj: JSON
    prev: JSON | None


@dataclass
class Warnings:
    """`Warning:` headers a write produced (unknown fields dropped)."""

    messages: list[str] = field(default_factory=list)


class Subscription:
    """One open watch: a queue the store fills on every commit to its storage."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
    ) -> None:
        self.store = store
        self.rt = rt
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: deque[WatchEvent] = deque()
        self.dropped = False
        self.abrupt = False
        self.ending = False  # end the stream once the queued events are written
        self.expired: ApiError | None = None
        self._getters = rt.field_getters()

    def _passes(self, obj: JSON | None) -> bool:
        if obj is None:
            return False
        meta = _meta(obj)
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, meta.get("labels")) and fields_match(
            self.fields, obj, self._getters
        )

    def translate(self, event: WatchEvent) -> tuple[str, JSON] | None:
        """(type, stored object) as this watcher sees the event, or None (cacheWatcher rules)."""
        if event.type == "ADDED" and event.prev is None:
            return ("ADDED", event.obj) if self._passes(event.obj) else None
        cur = event.type != "DELETED" and self._passes(event.obj)
        old = self._passes(event.prev)
        if cur and old:
            return "MODIFIED", event.obj
        if cur:
            return "ADDED", event.obj
        if old:
            if event.type == "DELETED":
                return "DELETED", event.obj
            # left the selection: a DELETED carrying the old content at the new resourceVersion
            prev = copy.copy(event.prev) if event.prev is not None else {}
            prev["metadata"] = {**_meta(prev), "resourceVersion": str(event.rv)}
            return "DELETED", prev
        return None

    def wait(self, timeout: float) -> list[WatchEvent]:
        """Drain queued events, waiting up to `timeout` seconds for the first one."""
        with self.store.cond:
            if not self.queue and not self.dropped and not self.store.closed:
                self.store.cond.wait(timeout)
            out = list(self.queue)
            self.queue.clear()
            return out

    def current_rv(self) -> int:
        """The resourceVersion this watcher is synced to once its queue is drained."""
        with self.store.cond:
            return self.store.rv if not self.queue else self.queue[-1].rv

    def close(self) -> None:
        """Unregister from the store."""
        self.store.unsubscribe(self)


def _continue_token(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
        rv, start = int(doc["rv"]), str(doc["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from None
    return rv, start.rstrip("\x00")


def _key_str(key: Key) -> str:
    return f"{key[0]}/{key[1]}" if key[0] else key[1]


def parse_rv(value: str | None, what: str = "resourceVersion") -> int | None:
    """An optional resourceVersion parameter as an int; 400 when not a number."""
    if value is None or value == "":
        return None
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {what}: {value!r}") from None
    if rv < 0:
        raise errors.bad_request(f"invalid {what}: {value!r}")
    return rv


class Store:
    """The double's etcd plus registry logic (strategies, preconditions, validation)."""

    def __init__(
        self,
        *,
        history_limit: int = 100_000,
        clock: Callable[[], datetime] = _now,
        start_rv: int = 1000,
    ) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = start_rv
        self.compacted_rv = start_rv
        self.history_limit = history_limit
        self.clock = clock
        self.closed = False
        self.types = crds.TypeRegistry((*RESOURCES, crds.CUSTOM_RESOURCE_DEFINITIONS))
        self._objects: dict[str, dict[Key, JSON]] = {rt.storage: {} for rt in self.types.all()}
        self._history: deque[WatchEvent] = deque()
        self._subs: set[Subscription] = set()
        for ns in DEFAULT_NAMESPACES:
            self.create(NAMESPACES, None, {"metadata": {"name": ns}})

    # ------------------------------------------------------------ internals

    def _stamp(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _commit(
        self, type_: str, rt: ResourceType, key: Key, obj: JSON | None, prev: JSON | None
    ) -> JSON:
        """Bump the resourceVersion, store (or remove) and notify watchers."""
        self.rv += 1
        base = obj if obj is not None else prev
        assert base is not None
        stored = dict(base)
        stored["metadata"] = {**_meta(base), "resourceVersion": str(self.rv)}
        objects = self._objects[rt.storage]
        if type_ == "DELETED":
            objects.pop(key, None)
        else:
            objects[key] = stored
        event = WatchEvent(type_, self.rv, rt.storage, key, stored, prev)
        self._history.append(event)
        while len(self._history) > self.history_limit:
            self.compacted_rv = self._history.popleft().rv
        for sub in self._subs:
            if sub.rt.storage == rt.storage:
                sub.queue.append(event)
        self.cond.notify_all()
        if rt.storage == crds.CUSTOM_RESOURCE_DEFINITIONS.storage:
            self._serve_crds()
        return stored

    def _serve_crds(self) -> None:
        """Serve what the stored CRDs define now: a new CRD's storage starts empty; a deleted
        CRD's objects are deleted (watchers see them go) and its watches end, as do watches
        of a version no longer served."""
        before = self.types.custom_storages()
        self.types.update(self._objects[crds.CUSTOM_RESOURCE_DEFINITIONS.storage].values())
        after = self.types.custom_storages()
        for storage in after.keys() - before.keys():
            self._objects[storage] = {}
        for storage in before.keys() - after.keys():
            rt = before[storage]
            for key, obj in sorted(self._objects[storage].items()):
                self._commit("DELETED", rt, key, None, obj)
            del self._objects[storage]
        for sub in self._subs:
            if (
                sub.rt.custom
                and self.types.lookup(sub.rt.group, sub.rt.version, sub.rt.plural) is None
            ):
                sub.ending = True
        self.cond.notify_all()

    def _conform(
        self, rt: ResourceType, obj: JSON, warnings: Warnings, *, strict: bool, patching: bool
    ) -> JSON:
        if rt.custom:
            out, report = crds.conform_custom(obj)
        else:
            out, report = schema.conform_object(obj, rt.definition)
        if report.errors:
            msg = "; ".join(report.errors)
            if patching:
                raise ApiError(
                    422,
                    msg,
                    details={
                        "causes": [
                            {"reason": "FieldValueInvalid", "message": m, "field": "patch"}
                            for m in report.errors
                        ]
                    },
                )
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {msg}'
            )
        if report.unknown:
            if strict:
                listed = ", ".join(f'unknown field "{u}"' for u in report.unknown)
                raise errors.bad_request(f"strict decoding error: {listed}")
            warnings.messages.extend(f'unknown field "{u}"' for u in report.unknown)
        return out

    def _check_body(self, rt: ResourceType, body: Any) -> JSON:
        if not isinstance(body, dict):
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "json: cannot unmarshal into an object"
            )
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if "metadata" in body and not isinstance(body["metadata"], dict):
            raise errors.bad_request("metadata must be an object")
        # only the top level and metadata are edited before `_conform` rebuilds the document
        obj = dict(body)
        obj["metadata"] = dict(body.get("metadata") or {})
        return obj

    def _validate(self, rt: ResourceType, obj: JSON) -> None:
        meta = _meta(obj)
        causes = validation.object_meta(
            meta, namespace_name=rt is NAMESPACES, name_check=rt.name_check
        ) + rt.validate(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, meta.get("name", ""), causes)

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and ("", namespace) not in self._objects[NAMESPACES.storage]:
            raise errors.not_found("namespaces", "", namespace)

    def _expire(self, rv: int) -> ApiError:
        return errors.expired(f"too old resource version: {rv} ({self.compacted_rv + 1})")

    def _state_at(self, storage: str, rv: int) -> dict[Key, JSON]:
        """The objects of one storage as they were at resourceVersion `rv` (history rollback)."""
        if rv >= self.rv:
            return dict(self._objects[storage])
        if rv < self.compacted_rv:
            raise self._expire(rv)
        state = dict(self._objects[storage])
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.storage != storage:
                continue
            if event.prev is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.prev
        return state

    # --------------------------------------------------------------- reads

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> JSON:
        """One object as `rt` serves it; 404 when missing."""
        with self.lock:
            obj = self._objects[rt.storage].get((namespace or "", name))
            if obj is None:
                raise errors.not_found(rt.plural, rt.group, name)
            return rt.view(obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: list[Requirement] | None = None,
        fields: list[FieldRequirement] | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> JSON:
        """A `<Kind>List` with list semantics of the real server (pagination on a snapshot)."""
        labels = labels or []
        fields = fields or []
        getters = rt.field_getters()
        with self.lock:
            start = ""
            if continue_token:
                list_rv, start = _parse_continue(continue_token)
                if list_rv < self.compacted_rv:
                    raise errors.expired(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter, "
                        "or use the continue token in this response to retrieve the remainder "
                        "of the results. Continuing with the provided token results in an "
                        "inconsistent list - objects that were created, modified, or deleted "
                        "between the time the first chunk was returned and now may show up in "
                        "the list.",
                        metadata={"continue": _continue_token(self.rv, start)},
                    )
                state = self._state_at(rt.storage, list_rv)
            else:
                requested = parse_rv(resource_version)
                list_rv = self.rv
                if resource_version_match not in (None, "", "NotOlderThan", "Exact"):
                    raise errors.bad_request(
                        f"resourceVersionMatch: Unsupported value: {resource_version_match!r}"
                    )
                if requested is not None and requested > self.rv:
                    raise ApiError(
                        504,
                        f"Too large resource version: {requested}, current: {self.rv}",
                        reason="Timeout",
                        details={
                            "causes": [
                                {
                                    "reason": "ResourceVersionTooLarge",
                                    "message": "Too large resource version",
                                }
                            ],
                            "retryAfterSeconds": 1,
                        },
                    )
                if resource_version_match == "Exact" and requested is not None:
                    state = self._state_at(rt.storage, requested)
                    list_rv = requested
                else:
                    state = dict(self._objects[rt.storage])
            ordered = sorted(state.items(), key=lambda kv: _key_str(kv[0]))
            matching = []
            for key, obj in ordered:
                if start and _key_str(key) <= start:
                    continue
                if namespace and key[0] != namespace:
                    continue
                if not labels_match(labels, _meta(obj).get("labels")):
                    continue
                if not fields_match(fields, obj, getters):
                    continue
                matching.append((key, obj))
            meta: JSON = {"resourceVersion": str(list_rv)}
            page = matching
            if limit and limit > 0 and len(matching) > limit:
                page = matching[:limit]
                meta["continue"] = _continue_token(list_rv, _key_str(page[-1][0]))
                if not labels and not fields:
                    meta["remainingItemCount"] = len(matching) - limit
            items = []
            for _, obj in page:
                item = rt.view(obj)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
            return {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            }

    def objects(self, rt: ResourceType, namespace: str | None = None) -> list[JSON]:
        """All objects of a resource (deep copies, as `rt` serves them), sorted by key."""
        with self.lock:
            found = sorted(self._objects[rt.storage].items(), key=lambda kv: _key_str(kv[0]))
            return [
                schema.clone(rt.view(obj))
                for key, obj in found
                if namespace is None or key[0] == namespace
            ]

    # -------------------------------------------------------------- writes

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        strict: bool = False,
        warnings: Warnings | None = None,
    ) -> JSON:
        """POST: AlreadyExists, generateName, uid/creationTimestamp, ADDED event."""
        warnings = warnings if warnings is not None else Warnings()
        obj = self._check_body(rt, body)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            namespace = namespace or body_ns or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if meta.get("resourceVersion"):
            raise ApiError(500, "resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(_NAME_CHARS) for _ in range(5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        obj = rt.to_storage(self._conform(rt, obj, warnings, strict=strict, patching=False))
        with self.lock:
            self._require_namespace(rt, namespace)
            meta = obj.setdefault("metadata", {})
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = self._stamp()
            for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(transient, None)
            rt.prepare(obj, None)
            self._validate(rt, obj)
            key = (namespace, meta.get("name", ""))
            if key in self._objects[rt.storage]:
                raise errors.already_exists(rt.plural, rt.group, key[1])
            obj["kind"], obj["apiVersion"] = _storage_type(rt)
            if dry_run:
                return rt.view(obj)
            return rt.view(self._commit("ADDED", rt, key, obj, None))

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        warnings: Warnings | None = None,
    ) -> tuple[JSON, bool]:
        """PUT: returns (object, created). 409 on a stale resourceVersion."""
        warnings = warnings if warnings is not None else Warnings()
        obj = self._check_body(rt, body)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        meta["name"] = name
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        obj = rt.to_storage(self._conform(rt, obj, warnings, strict=strict, patching=False))
        with self.lock:
            key = (namespace or "", name)
            old = self._objects[rt.storage].get(key)
            if old is None:
                if not rt.allow_create_on_update or subresource:
                    raise errors.not_found(rt.plural, rt.group, name)
                if _meta(obj).get("resourceVersion"):
                    raise errors.conflict(rt.plural, rt.group, name)
                created = self.create(
                    rt, namespace, rt.view(obj), dry_run=dry_run, warnings=warnings
                )
                return created, True
            sent_uid = _meta(obj).get("uid")
            if sent_uid and sent_uid != _meta(old).get("uid"):
                # PUT carries the body's uid as a storage precondition (409, not 422)
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {sent_uid}, UID in object "
                    f"meta: {_meta(old).get('uid')}",
                )
            return self._update_existing(rt, key, old, obj, subresource, dry_run), False

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch_body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        warnings: Warnings | None = None,
    ) -> JSON:
        """PATCH (merge, json, strategic) against the current object; 409 on a stale RV."""
        warnings = warnings if warnings is not None else Warnings()
        with self.lock:
            key = (namespace or "", name)
            old = self._objects[rt.storage].get(key)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            current = rt.view(old)
            try:
                if patch_type == JSON_PATCH:
                    patched = json_patch(current, patch_body)
                elif patch_type == MERGE_PATCH:
                    if not isinstance(patch_body, dict):
                        raise PatchError(400, "invalid JSON Patch")
                    patched = merge_patch(current, patch_body)
                elif patch_type == STRATEGIC_PATCH:
                    node = schema.ref_node(rt.definition)
                    patched = strategic_merge_patch(current, patch_body, node)
                else:
                    raise ApiError(415, f"unsupported patch type {patch_type}")
            except PatchError as exc:
                if exc.code == 422:
                    raise ApiError(
                        422,
                        "the server rejected our request due to an error in our request",
                        reason="Invalid",
                        details={
                            "causes": [
                                {"reason": "UnexpectedServerResponse", "message": exc.message}
                            ]
                        },
                    ) from None
                raise ApiError(exc.code, exc.message) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            patched_meta = patched.get("metadata")
            if not isinstance(patched_meta, dict):
                patched_meta = {}
                patched["metadata"] = patched_meta
            if patched_meta.get("name") != name:
                raise errors.bad_request(
                    f"the name of the object ({patched_meta.get('name')}) does not match the name "
                    f"on the URL ({name})"
                )
            patched["kind"], patched["apiVersion"] = rt.kind, rt.api_version
            new = rt.to_storage(self._conform(rt, patched, warnings, strict=strict, patching=True))
            return self._update_existing(rt, key, old, new, subresource, dry_run)

    def _update_existing(
        self,
        rt: ResourceType,
        key: Key,
        old: JSON,
        new: JSON,
        subresource: str | None,
        dry_run: bool,
        *,
        direct: bool = False,
    ) -> JSON:
        old_meta = _meta(old)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        sent_rv = meta.get("resourceVersion")
        if sent_rv:
            if sent_rv != old_meta.get("resourceVersion"):
                raise errors.conflict(rt.plural, rt.group, key[1])
        elif not rt.allow_unconditional_update and not direct:
            raise errors.invalid(
                rt.kind,
                rt.group,
                key[1],
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            raise errors.invalid(
                rt.kind,
                rt.group,
                key[1],
                [
                    (
                        "metadata.uid",
                        "FieldValueInvalid",
                        f'Invalid value: "{meta["uid"]}": field is immutable',
                    )
                ],
            )
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    key[1],
                    [
                        (
                            "metadata.finalizers",
                            "FieldValueForbidden",
                            "Forbidden: no new finalizers can be added if the object is being "
                            "deleted, found new finalizers " + json.dumps(sorted(added)),
                        )
                    ],
                )
        for fixed in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        meta["name"] = key[1]
        if rt.namespaced:
            meta["namespace"] = key[0]
        if rt.status_subresource and not direct:
            rt.split_write(new, old, subresource)
        rt.prepare(new, old)
        self._validate(rt, new)
        new["kind"], new["apiVersion"] = _storage_type(rt)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if new == old:
            return rt.view(old)  # a no-op write: same resourceVersion, no event
        if dry_run:
            return rt.view(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return rt.view(self._commit("DELETED", rt, key, new, old))
        return rt.view(self._commit("MODIFIED", rt, key, new, old))

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: JSON | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[JSON, bool]:
        """DELETE with DeleteOptions preconditions. Returns (body, deleted_now)."""
        options = options or {}
        pre = options.get("preconditions") or {}
        with self.lock:
            key = (namespace or "", name)
            old = self._objects[rt.storage].get(key)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            meta = _meta(old)
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {meta.get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp") or dry_run:
                    return rt.view(old), False
                marked = dict(old)
                marked["metadata"] = {
                    **meta,
                    "deletionTimestamp": self._stamp(),
                    "deletionGracePeriodSeconds": 0,
                }
                return rt.view(self._commit("MODIFIED", rt, key, marked, old)), False
            details: JSON = {"name": name}
            if rt.group:
                details["group"] = rt.group
            details["kind"] = rt.plural
            details["uid"] = meta.get("uid")
            status = errors.status_body(200, "", "", details=details, success=True)
            if dry_run:
                return status, True
            self._commit("DELETED", rt, key, None, old)
            if rt is NAMESPACES:
                for other in self.types.all():
                    if not other.namespaced:
                        continue
                    for okey in [k for k in self._objects[other.storage] if k[0] == name]:
                        prev = self._objects[other.storage][okey]
                        self._commit("DELETED", other, okey, None, prev)
            return status, True

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        options: JSON | None = None,
        *,
        dry_run: bool = False,
    ) -> JSON:
        """DELETE on a collection: deletes every match, returns them as a list."""
        with self.lock:
            listed = self.list_objects(rt, namespace, labels=labels, fields=fields)
            deleted = []
            for item in listed["items"]:
                meta = item["metadata"]
                try:
                    self.delete(rt, meta.get("namespace"), meta["name"], options, dry_run=dry_run)
                except ApiError:
                    continue
                deleted.append(item)
            listed["items"] = deleted
            return listed

    # ------------------------------------------------------------- helpers

    def mutate(
        self, rt: ResourceType, namespace: str | None, name: str, fn: Callable[[JSON], None]
    ) -> JSON:
        """Change an object as another writer would (kubelet, Kilo): spec and status both apply."""
        with self.lock:
            key = (namespace or "", name)
            old = self._objects[rt.storage].get(key)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            obj = schema.clone(rt.view(old))
            fn(obj)
            _meta(obj).pop("resourceVersion", None)
            new = rt.to_storage(self._conform(rt, obj, Warnings(), strict=False, patching=False))
            return schema.clone_doc(
                self._update_existing(rt, key, old, new, None, False, direct=True)
            )

    def compact(self, rv: int | None = None) -> int:
        """Forget watch history up to `rv` (default: now); older watches/continues get 410."""
        with self.lock:
            target = self.rv if rv is None else min(rv, self.rv)
            while self._history and self._history[0].rv <= target:
                self._history.popleft()
            self.compacted_rv = max(self.compacted_rv, target)
            return self.compacted_rv

    def subscribe(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        resource_version: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        send_initial_events: bool = False,
    ) -> tuple[Subscription, int]:
        """Open a watch: replay (or synthesize ADDED for) what it must see first.

        Returns the subscription and the resourceVersion the initial state was read at.
        A too-old resourceVersion yields a subscription whose `expired` error the server
        streams as an in-stream ERROR event (as kube-apiserver does).
        """
        requested = parse_rv(resource_version)
        with self.lock:
            sub = Subscription(self, rt, namespace, labels, fields)
            if requested is None or requested == 0 or send_initial_events:
                for key, obj in sorted(
                    self._objects[rt.storage].items(), key=lambda kv: _key_str(kv[0])
                ):
                    sub.queue.append(
                        WatchEvent(
                            "ADDED", int(_meta(obj)["resourceVersion"]), rt.storage, key, obj, None
                        )
                    )
            elif requested < self.compacted_rv:
                sub.expired = self._expire(requested)
                return sub, self.rv
            else:
                sub.queue.extend(
                    e for e in self._history if e.rv > requested and e.storage == rt.storage
                )
            self._subs.add(sub)
            return sub, self.rv

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop feeding a subscription."""
        with self.lock:
            self._subs.discard(sub)

    def drop_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch (cleanly, or by resetting the socket when `abrupt`)."""
        with self.cond:
            for sub in self._subs:
                sub.dropped = True
                sub.abrupt = abrupt
            count = len(self._subs)
            self.cond.notify_all()
            return count

    @property
    def open_watches(self) -> int:
        """How many watches are currently open."""
        with self.lock:
            return len(self._subs)

    def close(self) -> None:
        """Wake every watcher so it ends."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def history(self, storage: str | None = None) -> list[WatchEvent]:
        """Retained watch history (for assertions)."""
        with self.lock:
            return [e for e in self._history if storage is None or e.storage == storage]


def _storage_type(rt: ResourceType) -> tuple[str, str]:
    """(kind, apiVersion) of the stored form: the first resource registered on that storage."""
    canonical = next((other for other in RESOURCES if other.storage == rt.storage), rt)
    return canonical.kind, canonical.api_version
