"""--source-dir: the revision is a content hash, stable across reads, new with any change."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.dirsource import DirectorySource
from reconciler.controller.source import Outcome, Source
from reconciler.ports import SourceUnavailableError
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.gitrepos import BROKEN_EAST, CLUSTER, EAST


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_revision_is_stable_and_follows_the_content(tmp_path: Path) -> None:
    root = tmp_path / "sites"
    write(root, {"cluster.yaml": CLUSTER, "east.yaml": EAST, "notes.txt": "ignored"})
    port = DirectorySource(root)
    first = port.fetch()
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert port.fetch() == first
    assert DirectorySource(root).fetch() == first  # another reader, same content

    (root / "notes.txt").write_text("still ignored")
    assert port.fetch() == first
    write(root, {"east.yaml": EAST.replace("51820", "51821")})
    second = port.fetch()
    assert second != first
    write(root, {"east.yaml": EAST})
    assert port.fetch() == first
    (root / "east.yaml").rename(root / "east2.yaml")  # same bytes, another name
    assert port.fetch() not in {first, second}

    files, _ = port.read(port.fetch())
    assert [Path(f.path).name for f in files] == ["cluster.yaml", "east2.yaml"]
    with pytest.raises(SourceUnavailableError):
        port.read(first)


def test_a_directory_source_keeps_the_last_good(tmp_path: Path) -> None:
    root = tmp_path / "sites"
    write(root, {"cluster.yaml": CLUSTER, "east.yaml": EAST})
    source = Source(DirectorySource(root), FakeClock(TimeBase()))
    assert source.sync() is Outcome.NEW
    good = source.good
    assert good is not None
    assert source.sync() is Outcome.UNCHANGED

    write(root, {"east.yaml": BROKEN_EAST})
    assert source.sync() is Outcome.REFUSED
    refused = source.state.refused
    assert refused is not None and refused.errors[0].file == str(root / "east.yaml")
    assert refused.errors[0].line == 9
    assert source.good is good

    (root / "east.yaml").unlink()
    (root / "cluster.yaml").unlink()
    root.rmdir()
    assert source.sync() is Outcome.UNAVAILABLE
    assert source.good is good and source.state.error is not None


def test_a_configmap_volume_is_read_once_per_file(tmp_path: Path) -> None:
    # The layout Kubernetes' atomic writer makes, and its swap on an update.
    root = tmp_path / "volume"
    write(root, {"..2026_12_03_a/cluster.yaml": CLUSTER, "..2026_12_03_a/east.yaml": EAST})
    (root / "..data").symlink_to("..2026_12_03_a")
    for name in ("cluster.yaml", "east.yaml"):
        (root / name).symlink_to(f"..data/{name}")
    source = Source(DirectorySource(root), FakeClock(TimeBase()))
    assert source.sync() is Outcome.NEW
    first = source.good
    assert first is not None and [s.name for s in first.topology.sites] == ["east"]

    write(root, {"..2026_12_03_b/cluster.yaml": CLUSTER, "..2026_12_03_b/east.yaml": BROKEN_EAST})
    (root / "..data_tmp").symlink_to("..2026_12_03_b")
    (root / "..data_tmp").rename(root / "..data")
    assert source.sync() is Outcome.REFUSED
    refused = source.state.refused
    assert refused is not None and refused.errors[0].file == str(root / "east.yaml")
    assert source.good is first
