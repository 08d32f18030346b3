"""Fault injection and the request log.

Rules match on method, a regex searched in the path, and whether the request
is a watch; `times` bounds how many requests a rule affects (None: all).

The faults: `latency` (a slow API, in real time; a `before` hook that moves a test's
fake clock makes one in fake time), `fail` (any status, 5xx on lists among them),
`throttle` (429 with Retry-After), `reset` (a dropped connection, before or after the
request is served), `expire` (a watch answered with the in-stream 410 Expired that
kube-apiserver sends for a compacted resourceVersion: a 410 storm when unlimited),
and `before`/`after` hooks (another writer acting just before a request is served, or
reacting to it at once).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestInfo:
    """What a fault predicate or hook sees of a request."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any
    verb: str
    resource: str | None
    name: str | None
    namespace: str | None
    subresource: str | None

    @property
    def is_watch(self) -> bool:
        """Whether this is a watch request."""
        return self.verb == "watch"


Predicate = Callable[[RequestInfo], bool]


@dataclass
class Rule:
    """One fault rule. `remaining` counts down to 0 (None: unlimited); `hits` counts matches."""

    action: str  # "latency" | "status" | "reset" | "expire" | "hook" | "after"
    remaining: int | None
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    when: Predicate | None = None
    status: int = 0
    retry_after: int | None = None
    message: str | None = None
    seconds: float = 0.0
    hook: Callable[[RequestInfo], None] | None = None
    after: bool = False
    hits: int = 0

    def matches(self, req: RequestInfo) -> bool:
        """Whether this rule applies to `req` (ignoring the remaining count)."""
        if self.method and req.method.upper() != self.method.upper():
            return False
        if self.path and not re.search(self.path, req.path):
            return False
        if self.watch is not None and req.is_watch != self.watch:
            return False
        return self.when is None or self.when(req)


@dataclass(frozen=True)
class Decision:
    """What the server must do with a request before (or instead of) serving it."""

    latency: float = 0.0
    status: int = 0
    retry_after: int | None = None
    message: str | None = None
    reset: bool = False
    reset_after: bool = False
    expire: bool = False
    hooks: tuple[Callable[[RequestInfo], None], ...] = ()
    after: tuple[Callable[[RequestInfo], None], ...] = ()


class Faults:
    """Per-test fault configuration, consulted once per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def latency(
        self,
        seconds: float,
        *,
        times: int | None = None,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        when: Predicate | None = None,
    ) -> Rule:
        """Delay matching requests by `seconds` (cumulative with other latency rules)."""
        return self._add(Rule("latency", times, method, path, watch, when, seconds=seconds))

    def fail(
        self,
        status: int = 503,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        when: Predicate | None = None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> Rule:
        """Answer the next `times` matching requests with `status` (a metav1.Status body)."""
        return self._add(
            Rule(
                "status",
                times,
                method,
                path,
                watch,
                when,
                status=status,
                retry_after=retry_after,
                message=message,
            )
        )

    def throttle(
        self,
        *,
        retry_after: int = 1,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        when: Predicate | None = None,
    ) -> Rule:
        """429 TooManyRequests with a `Retry-After` header, as API priority and fairness answers."""
        return self.fail(
            429,
            times=times,
            method=method,
            path=path,
            watch=watch,
            when=when,
            retry_after=retry_after,
            message="Too many requests, please try again later.",
        )

    def reset(
        self,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        when: Predicate | None = None,
        after: bool = False,
    ) -> Rule:
        """Close the connection (TCP RST) without answering the next matching requests.

        With `after=True` the request is served first (a write is applied) and only the
        answer is lost, as when a connection dies on the way back.
        """
        return self._add(Rule("reset", times, method, path, watch, when, after=after))

    def before(
        self,
        hook: Callable[[RequestInfo], None],
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        when: Predicate | None = None,
    ) -> Rule:
        """Run `hook` just before a matching request is served (e.g. a concurrent writer)."""
        return self._add(Rule("hook", times, method, path, watch, when, hook=hook))

    def expire(
        self,
        *,
        times: int | None = 1,
        path: str | None = None,
        when: Predicate | None = None,
    ) -> Rule:
        """Answer the next `times` matching watches as kube-apiserver answers a watch from a
        compacted resourceVersion: 200, one ERROR event carrying 410 Expired, end of stream.
        Unlimited (`times=None`), every relist is followed by a watch that expires: a storm."""
        return self._add(Rule("expire", times, "GET", path, True, when))

    def after(
        self,
        hook: Callable[[RequestInfo], None],
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        when: Predicate | None = None,
    ) -> Rule:
        """Run `hook` just after a matching request was served, before its answer goes out:
        another writer reacting to it at once (a controller that reverts a key)."""
        return self._add(Rule("after", times, method, path, False, when, hook=hook))

    def remove(self, rule: Rule) -> None:
        """Drop one rule."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._rules.clear()

    def decide(self, req: RequestInfo) -> Decision:
        """Consume matching rules and say what to do with `req`."""
        latency = 0.0
        hooks: list[Callable[[RequestInfo], None]] = []
        after: list[Callable[[RequestInfo], None]] = []
        status_rule: Rule | None = None
        reset: Rule | None = None
        expire = False
        with self._lock:
            for rule in self._rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.matches(req):
                    continue
                if rule.action in ("status", "reset"):
                    if status_rule is not None or reset is not None:
                        continue  # first failure rule wins; later ones keep their budget
                    if rule.action == "reset":
                        reset = rule
                    else:
                        status_rule = rule
                elif rule.action == "latency":
                    latency += rule.seconds
                elif rule.action == "expire":
                    if expire:
                        continue
                    expire = True
                elif rule.action == "hook" and rule.hook is not None:
                    hooks.append(rule.hook)
                elif rule.action == "after" and rule.hook is not None:
                    after.append(rule.hook)
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
        return Decision(
            latency=latency,
            status=status_rule.status if status_rule else 0,
            retry_after=status_rule.retry_after if status_rule else None,
            message=status_rule.message if status_rule else None,
            reset=reset is not None and not reset.after,
            reset_after=reset is not None and reset.after,
            expire=expire,
            hooks=tuple(hooks),
            after=tuple(after),
        )


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class LoggedRequest:
    """One served request. `status` 0 means the connection was reset without an answer."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    status: int
    timestamp: float
    verb: str
    resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    subresource: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        """create / update / patch / delete / deletecollection."""
        return self.verb in WRITE_VERBS


class RequestLog:
    """Thread-safe, append-only log of requests the double answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[LoggedRequest]:
        """A snapshot of all entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.entries)

    def filter(
        self,
        *,
        verb: str | None = None,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        subresource: str | None = None,
        status: int | None = None,
        path: str | None = None,
        content_type: str | None = None,
    ) -> list[LoggedRequest]:
        """Entries matching every given criterion (`path` is a regex searched in the path)."""
        out = []
        for e in self.entries:
            if verb is not None and e.verb != verb:
                continue
            if method is not None and e.method != method.upper():
                continue
            if resource is not None and e.resource != resource:
                continue
            if name is not None and e.name != name:
                continue
            if namespace is not None and e.namespace != namespace:
                continue
            if subresource is not None and e.subresource != subresource:
                continue
            if status is not None and e.status != status:
                continue
            if path is not None and not re.search(path, e.path):
                continue
            if content_type is not None and (e.content_type or "").split(";")[0] != content_type:
                continue
            out.append(e)
        return out

    def count(self, **criteria: Any) -> int:
        """How many entries match (same criteria as `filter`)."""
        return len(self.filter(**criteria))

    def writes(self) -> list[LoggedRequest]:
        """Every write request (create/update/patch/delete/deletecollection)."""
        return [e for e in self.entries if e.is_write]

    def clear(self) -> None:
        """Forget everything logged so far."""
        with self._lock:
            self._entries.clear()

    def wait_for(
        self, predicate: Callable[[list[LoggedRequest]], bool], timeout: float = 5.0
    ) -> bool:
        """Poll until `predicate(entries)` holds or `timeout` passes; returns whether it held."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.entries):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
