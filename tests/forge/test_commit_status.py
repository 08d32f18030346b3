"""Commit statuses against the HTTP double of GitHub's and GitLab's APIs: where they go
(derived from the git URL), one per state change, the first errors of a refused commit,
and a forge that refuses logged and counted while the reporter goes on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from reconciler.adapters.forge import (
    GitHubCommitStatuses,
    GitLabCommitStatuses,
    status_target,
)
from reconciler.controller.commitstatus import CommitStatusReporter
from reconciler.controller.metrics import Metrics
from reconciler.controller.source import Good, Refused
from reconciler.core.planning.plan import DECLARED, PUT, Change, NodePlan, Plan, SitePlan
from reconciler.model.diagnostics import Diagnostic
from reconciler.model.suspension import Hold
from reconciler.ports import CommitStatuses, ForgeError
from tests.forge.double import TOKEN, ForgeDouble, serving

SHA = "a" * 40
NEXT = "b" * 40
NOW = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)


GH, GL = "https://api.github.com", "https://gitlab.com/api/v4"
GHE, GLE = "https://ghe.example.com/api/v3", "https://gitlab.example.com/api/v4"
DERIVED = [
    ("github", "https://github.com/acme/topology.git", (GH, "acme/topology")),
    ("github", "git@github.com:acme/topology.git", (GH, "acme/topology")),
    ("github", "ssh://git@ghe.example.com:2222/acme/t", (GHE, "acme/t")),
    ("gitlab", "https://gitlab.example.com/net/sub/t.git", (GLE, "net/sub/t")),
    ("gitlab", "git@gitlab.com:net/topology.git", (GL, "net/topology")),
]  # fmt: skip


@pytest.mark.parametrize(("forge", "url", "expected"), DERIVED)
def test_the_repository_and_api_come_from_the_git_url(
    forge: str, url: str, expected: tuple[str, str]
) -> None:
    assert status_target(forge, url) == expected


def test_what_cannot_be_derived_is_asked_for_and_what_is_given_wins() -> None:
    with pytest.raises(ValueError, match="give --commit-status-repo"):
        status_target("github", "file:///srv/topology.git")
    with pytest.raises(ValueError, match="give --commit-status-api-url"):
        status_target("gitlab", "file:///srv/topology.git", repo="net/topology")
    with pytest.raises(ValueError, match="not OWNER/NAME"):
        status_target("github", "https://github.com/acme/topology", repo="acme")
    given = status_target("github", "https://github.com/a/b", "c/d", "http://127.0.0.1:1")
    assert given == ("http://127.0.0.1:1", "c/d")


@pytest.fixture
def forge() -> Iterator[ForgeDouble]:
    with serving() as server:
        server.repos |= {"acme/topology", "net/topology"}
        yield server


def good(sha: str) -> Good:
    return Good(sha, cast(Any, None), NOW)  # the reporter reads the revision only


def site(name: str, errors: tuple[str, ...] = ()) -> SitePlan:
    return SitePlan(name, (), None, (), (), errors=errors)


def planned(reporter: CommitStatusReporter, sha: str, *plans: SitePlan) -> None:
    """A full pass: each site, then the cluster."""
    planner = cast(Any, None)
    for plan in plans:
        reporter.site_planned(plan, planner, sha, "", (), ())
    cluster = Plan("test", (), (), sites=tuple(p.site for p in plans))
    reporter.full_planned(cluster, planner, sha)


class Posting:
    """A reporter and its thread."""

    def __init__(self, port: CommitStatuses, **kwargs: Any) -> None:
        self.metrics = Metrics()
        self.reporter = CommitStatusReporter(port, metrics=self.metrics, **kwargs)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reporter.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def settle(self, count: int) -> None:
        """Wait until ``count`` posts were attempted (answered or failed)."""
        deadline = threading.Event()
        for _ in range(200):
            done = len(self.reporter.posted) + self.failures
            if done >= count and not self.reporter._queue:
                return
            deadline.wait(0.02)
        raise AssertionError(f"{count} post(s) not made")

    @property
    def failures(self) -> int:
        value = self.metrics.registry.get_sample_value("topoctl_commit_status_failures_total")
        return int(value or 0)

    def close(self) -> None:
        self.stop.set()
        self.reporter.wake()
        self.thread.join(5)


def test_github_pending_on_fetch_success_when_converged_once_each(forge: ForgeDouble) -> None:
    posting = Posting(GitHubCommitStatuses(forge.url, TOKEN, "acme/topology", "topoctl/prod"))
    try:
        posting.reporter.fetched(good(SHA))
        posting.settle(1)
        planned(posting.reporter, SHA, site("east"), site("west"))
        planned(posting.reporter, SHA, site("east"), site("west"))  # a resync: no new state
        posting.reporter.fetched(good(SHA))  # taken again (the fallback): keeps its state
        posting.settle(2)
    finally:
        posting.close()
    assert [(s["sha"], s["state"]) for s in forge.statuses] == [(SHA, "pending"), (SHA, "success")]
    assert {s["context"] for s in forge.statuses} == {"topoctl/prod"}
    assert forge.statuses[1]["description"] == "topoctl: converged (2 site(s))"
    counted = posting.metrics.registry.get_sample_value
    assert counted("topoctl_commit_statuses_total", {"state": "success"}) == 1


def test_a_refused_commit_fails_with_its_first_errors_and_gitlab_says_failed(
    forge: ForgeDouble,
) -> None:
    posting = Posting(GitLabCommitStatuses(forge.url + "/api/v4", TOKEN, "net/topology", "topoctl"))
    errors = tuple(
        Diagnostic("sites/east.yaml", 9, 7, "error", "spec.nodes[0].keepalive", f"bad {i}", "x")
        for i in range(3)
    )
    try:
        posting.reporter.refused(Refused(NEXT, errors, 12, NOW))
        posting.settle(1)
    finally:
        posting.close()
    (status,) = forge.statuses
    assert (status["forge"], status["sha"], status["state"]) == ("gitlab", NEXT, "failed")
    assert status["name"] == "topoctl"
    assert status["description"].startswith("topoctl refused it: sites/east.yaml:9:7")
    assert status["description"].endswith("(+10 more)")


def test_a_held_site_fails_a_suspended_one_waits_and_converging_succeeds(
    forge: ForgeDouble,
) -> None:
    holds: dict[str, Hold] = {}
    port = GitHubCommitStatuses(forge.url, TOKEN, "acme/topology", "topoctl")
    posting = Posting(port, suspended=holds.get)
    change = Change("w-9", "west", "annotation", "kilo.squat.ai/location", PUT, DECLARED, None, "w")
    drifting = SitePlan("west", (NodePlan("w-9", "west", "uid", "1", (change,)),), None, (), ())
    try:
        posting.reporter.fetched(good(SHA))
        posting.settle(1)
        planned(posting.reporter, SHA, site("east", errors=("w-1: two sites claim it",)))
        posting.settle(2)
        planned(posting.reporter, SHA, site("east"))
        posting.settle(3)
        holds["west"] = Hold("alice", "T", "")
        posting.reporter.fetched(good(NEXT))
        posting.settle(4)
        planned(posting.reporter, NEXT, site("east"), drifting)
        holds.clear()
        planned(posting.reporter, NEXT, site("east"), site("west"))
        posting.settle(5)
    finally:
        posting.close()
    states = [(s["sha"][:1], s["state"], s["description"]) for s in forge.statuses]
    assert states == [
        ("a", "pending", "topoctl: applying this revision"),
        ("a", "failure", "topoctl: site east held back: w-1: two sites claim it"),
        ("a", "success", "topoctl: converged (1 site(s))"),
        ("b", "pending", "topoctl: applying this revision"),  # suspended: still pending
        ("b", "success", "topoctl: converged (2 site(s))"),
    ]


def test_a_forge_that_refuses_is_logged_and_counted_and_posting_goes_on(
    forge: ForgeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    forge.refuse["POST"] = [403]
    posting = Posting(GitHubCommitStatuses(forge.url, TOKEN, "acme/topology", "topoctl"))
    caplog.set_level(logging.WARNING, "topoctl.commitstatus")
    try:
        posting.reporter.fetched(good(SHA))
        posting.settle(1)
        planned(posting.reporter, SHA, site("east"))
        posting.settle(2)
    finally:
        posting.close()
    assert posting.failures == 1
    assert [s["state"] for s in forge.statuses] == ["success"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "commit status github acme/topology aaaaaaaaaaaa: pending not set" in line
    assert "403" in line and "Commit statuses: write" in line


def test_a_standby_and_a_dry_run_post_nothing(forge: ForgeDouble) -> None:
    for kwargs in ({"may_write": lambda: False}, {"dry_run": True}):
        posting = Posting(GitHubCommitStatuses(forge.url, TOKEN, "acme/topology", "t"), **kwargs)
        try:
            posting.reporter.fetched(good(SHA))
            for _ in range(20):
                if not posting.reporter._queue:
                    break
                threading.Event().wait(0.02)
        finally:
            posting.close()
    assert forge.statuses == [] and not [m for m, _ in forge.log if m == "POST"]


def test_the_adapter_raises_a_clear_error_for_an_unknown_repository(forge: ForgeDouble) -> None:
    port = GitHubCommitStatuses(forge.url, TOKEN, "acme/other", "topoctl")
    with pytest.raises(ForgeError, match="no repository acme/other"):
        port.post(SHA, "pending", "x")


def test_run_s_flags_say_what_is_missing(tmp_path: Path) -> None:
    from reconciler.controller.wiring import RunSettings, commit_status_port

    token = tmp_path / "token"
    url = "https://github.com/acme/topology.git"
    assert commit_status_port(RunSettings(git_url=url)) is None
    cases = {
        "needs --git-url": RunSettings(source_dir=tmp_path, commit_status="github"),
        "needs --commit-status-token-file": RunSettings(git_url=url, commit_status="github"),
        "No such file": RunSettings(
            git_url=url, commit_status="github", commit_status_token_file=token
        ),
    }
    for message, settings in cases.items():
        with pytest.raises(ValueError, match=message):
            commit_status_port(settings)
    token.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        commit_status_port(cases["No such file"])
    token.write_text(TOKEN + "\n")
    port = commit_status_port(
        RunSettings(git_url=url, commit_status="gitlab", commit_status_token_file=token)
    )
    assert port is not None and port.describe() == "gitlab acme/topology"
