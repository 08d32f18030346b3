"""The Source over real git: a bare remote, a clone that pushes, a GitRemote that fetches."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.gitsource import GitRemote
from reconciler.controller.metrics import Metrics
from reconciler.controller.source import BACKOFF_CAP, Good, Outcome, Source
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.gitrepos import BROKEN_EAST, CLUSTER, EAST, Remote

WEST = EAST.replace("east", "west").replace("203.0.113.91", "203.0.113.95")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


def make_source(remote: Remote, tmp_path: Path, **kwargs) -> Source:
    port = GitRemote(remote.url, tmp_path / "cache", ref=kwargs.pop("ref", "main"))
    return Source(port, FakeClock(TimeBase()), **kwargs)


def site_names(source: Source) -> list[str]:
    assert source.good is not None
    return [site.name for site in source.good.topology.sites]


def test_a_push_is_read_at_its_commit(remote: Remote, tmp_path: Path) -> None:
    first = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    source = make_source(remote, tmp_path)
    assert source.sync() is Outcome.NEW
    assert source.good is not None and source.good.revision == first
    assert len(first) == 40
    assert site_names(source) == ["east"]
    assert source.sync() is Outcome.UNCHANGED

    second = remote.push({"sites/west.yaml": WEST, "README.md": "not topology"})
    assert source.sync() is Outcome.NEW
    assert source.good.revision == second
    assert site_names(source) == ["east", "west"]
    # Read from the object database: the cache is a bare clone with no working tree.
    assert not (tmp_path / "cache" / "git" / "sites").exists()


def test_an_invalid_commit_is_refused_and_the_last_good_stays(
    remote: Remote, tmp_path: Path
) -> None:
    good = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    metrics = Metrics()
    source = make_source(remote, tmp_path, metrics=metrics)
    assert source.sync() is Outcome.NEW

    bad = remote.push({"sites/east.yaml": BROKEN_EAST}, "break east")
    assert source.sync() is Outcome.REFUSED
    state = source.state
    assert state.good is not None and state.good.revision == good
    assert state.refused is not None and state.refused.revision == bad
    first = state.refused.errors[0]
    assert (first.file, first.line, first.col) == ("sites/east.yaml", 9, 7)
    assert "keepalive" in first.message
    assert state.refused.total == 1
    # Seen again: no second refusal counted, nothing re-read.
    assert source.sync() is Outcome.UNCHANGED
    assert metrics.registry.get_sample_value("topoctl_revision_refused_total") == 1
    exposed = generate_latest(metrics.registry).decode()
    assert f'topoctl_source_revision_info{{revision="{good}"}} 1.0' in exposed

    fixed = remote.push({"sites/east.yaml": EAST.replace("51820", "51821")}, "fix east")
    assert source.sync() is Outcome.NEW
    assert source.good is not None and source.good.revision == fixed
    assert source.state.refused is not None and source.state.refused.revision == bad
    exposed = generate_latest(metrics.registry).decode()
    assert f'topoctl_source_revision_info{{revision="{fixed}"}} 1.0' in exposed
    assert good not in exposed


def test_a_restart_during_a_refused_commit_takes_the_revision_recorded_in_force(
    remote: Remote, tmp_path: Path
) -> None:
    good = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    bad = remote.push({"sites/east.yaml": BROKEN_EAST})
    source = make_source(remote, tmp_path, fallback=good)
    assert source.sync() is Outcome.REFUSED
    assert source.good is not None and source.good.revision == good
    assert source.state.refused is not None and source.state.refused.revision == bad


def test_a_missing_path_refuses_the_revision(remote: Remote, tmp_path: Path) -> None:
    sha = remote.push({"topology/cluster.yaml": CLUSTER})
    source = make_source(remote, tmp_path)
    assert source.sync() is Outcome.REFUSED
    refused = source.state.refused
    assert refused is not None and refused.revision == sha
    assert "does not exist" in refused.errors[0].message


def test_a_tag_is_followed_to_its_commit(remote: Remote, tmp_path: Path) -> None:
    tagged = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    remote.tag("v1")
    remote.push({"sites/west.yaml": WEST})
    source = make_source(remote, tmp_path, ref="v1")
    assert source.sync() is Outcome.NEW
    assert source.good is not None and source.good.revision == tagged
    assert site_names(source) == ["east"]


def test_an_unreachable_remote_keeps_the_last_good_and_backs_off_to_a_cap(
    remote: Remote, tmp_path: Path
) -> None:
    good = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    metrics = Metrics()
    source = make_source(remote, tmp_path, metrics=metrics)
    assert source.sync() is Outcome.NEW
    remote.path.rename(tmp_path / "moved.git")

    delays = []
    for attempt in range(1, 11):
        assert source.sync() is Outcome.UNAVAILABLE
        state = source.state
        assert state.good is not None and state.good.revision == good
        assert state.failures == attempt
        assert state.error is not None and "git fetch" in state.error
        assert str(remote.path) in state.error or remote.url in state.error
        delays.append(state.retry_in)
    for attempt, delay in enumerate(delays, start=1):
        base = 2.0 * 2 ** (attempt - 1)
        assert min(base, BACKOFF_CAP) <= delay <= min(base + 2.0, BACKOFF_CAP)
    assert delays[-1] == BACKOFF_CAP
    assert metrics.registry.get_sample_value("topoctl_source_errors_total") == 10
    success = metrics.registry.get_sample_value("topoctl_source_last_success_timestamp_seconds")
    assert source.good is not None
    assert success == source.good.taken_at.timestamp()  # the fake clock has not moved

    (tmp_path / "moved.git").rename(remote.path)
    assert source.sync() is Outcome.UNCHANGED
    assert source.state.failures == 0 and source.state.error is None


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.005)


def test_run_waits_the_backoff_while_failing_and_the_poll_otherwise(
    remote: Remote, tmp_path: Path
) -> None:
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    base = TimeBase()
    port = GitRemote(remote.url, tmp_path / "cache")
    source = Source(port, FakeClock(base), poll=60.0)
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    try:
        base.wait_for_sleepers(1)
        assert source.good is not None
        assert list(base.targets.values()) == [60.0]

        remote.path.rename(tmp_path / "moved.git")
        base.advance(60.0)
        wait_until(lambda: source.state.failures == 1 and base.sleepers == 1, "first failure")
        assert list(base.targets.values()) == [60.0 + source.state.retry_in]
        first = source.state.retry_in

        base.advance(first)
        wait_until(lambda: source.state.failures == 2 and base.sleepers == 1, "second failure")
        assert source.state.retry_in > first
    finally:
        source.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_a_fetch_request_fetches_at_once(remote: Remote, tmp_path: Path) -> None:
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    taken: list[Good] = []
    changed = threading.Event()

    def on_change(good: Good) -> None:
        taken.append(good)
        changed.set()

    port = GitRemote(remote.url, tmp_path / "cache")
    source = Source(port, SystemClock(), poll=3600.0, on_change=on_change)
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    try:
        assert changed.wait(30)
        changed.clear()
        second = remote.push({"sites/west.yaml": WEST})
        source.request_fetch()
        assert changed.wait(30)
        assert [g.revision for g in taken][-1] == second
    finally:
        source.stop()
        thread.join(10)


def test_a_cache_that_is_no_bare_clone_is_made_again(remote: Remote, tmp_path: Path) -> None:
    sha = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    junk = tmp_path / "cache" / "git"
    junk.mkdir(parents=True)
    (junk / "HEAD").write_text("garbage")
    source = make_source(remote, tmp_path)
    assert source.sync() is Outcome.NEW
    assert source.good is not None and source.good.revision == sha


class Exploding:
    def describe(self) -> str:
        return "exploding"

    def fetch(self) -> str:
        raise RuntimeError("a bug")

    def read(self, revision: str):
        raise AssertionError("not reached")


def test_a_fault_in_the_port_backs_off_instead_of_ending_the_loop() -> None:
    source = Source(Exploding(), FakeClock(TimeBase()))
    assert source.sync() is Outcome.UNAVAILABLE
    assert source.state.error == "unexpected RuntimeError"
    assert source.state.retry_in > 0


def test_a_failing_change_callback_does_not_end_the_loop(remote: Remote, tmp_path: Path) -> None:
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    calls: list[str] = []

    def on_change(good: Good) -> None:
        calls.append(good.revision)
        raise RuntimeError("the loop's bug")

    base = TimeBase()
    source = Source(
        GitRemote(remote.url, tmp_path / "cache"), FakeClock(base), poll=60.0, on_change=on_change
    )
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    try:
        base.wait_for_sleepers(1)
        second = remote.push({"sites/west.yaml": WEST})
        base.advance(60.0)
        wait_until(lambda: len(calls) == 2 and base.sleepers == 1, "second revision taken")
        assert calls[-1] == second and thread.is_alive()
    finally:
        source.stop()
        thread.join(10)


def test_a_refused_commit_is_told_once(remote: Remote, tmp_path: Path) -> None:
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    told: list[str] = []
    source = make_source(remote, tmp_path, on_refused=lambda r: told.append(r.revision))
    source.sync()
    bad = remote.push({"sites/east.yaml": BROKEN_EAST}, "break east")
    source.sync()
    source.sync()  # seen again: not told again
    assert told == [bad]
