"""docs/topology-reference.md: up to date with the models, and covering all of them."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from reconciler.core.rendering.reference import ordered_models, reference_markdown
from reconciler.model import topology as t
from reconciler.model.route import Route

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "topology-reference.md"
TEXT = reference_markdown()


def test_reference_file_is_up_to_date() -> None:
    assert REFERENCE.exists(), f"{REFERENCE} is missing: run `make docs`"
    assert REFERENCE.read_text(encoding="utf-8") == TEXT, (
        "docs/topology-reference.md is stale: the models changed. Regenerate it with "
        "`make docs` and commit it."
    )


def test_generation_is_deterministic() -> None:
    assert reference_markdown() == TEXT


def section(name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", TEXT, re.S | re.M)
    assert match, f"no section for {name}"
    return match.group(1)


def test_every_model_reachable_from_the_documents_has_a_section() -> None:
    names = [m.__name__ for m in ordered_models()]
    assert names[0] == "Cluster" and "Site" in names and len(names) == len(set(names))
    for expected in (Route, t.Pool, t.PoolSelector, t.Taint, t.SiteLifecycle, t.Protect):
        assert expected.__name__ in names
    for name in names:
        assert f"](#{name.lower()})" in TEXT  # linked from the contents


def test_every_field_has_its_yaml_name_and_each_allowed_value() -> None:
    for model in ordered_models():
        body = section(model.__name__)
        rows = {line.split(" | ")[0].strip("| `") : line for line in body.splitlines()
                if line.startswith("| `")}  # fmt: skip
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert key in rows, f"{model.__name__}.{key} is missing"
            row = rows[key]
            if field.is_required():
                assert "**required**" in row
            for literal in typing.get_args(field.annotation):
                if isinstance(literal, str):
                    assert f"`{literal}`" in row, (model.__name__, key, literal)


def test_names_are_the_yaml_aliases_not_python_names() -> None:
    assert "`internalIP`" in section("SiteNode")
    assert "`allowedLocationIPs`" in section("SiteSpec")
    assert "internal_ip" not in TEXT and "persistent_keepalive" not in TEXT


def test_defaults_and_ranges_come_through() -> None:
    mesh = section("Mesh")
    assert re.search(r"\| `port` \| integer \(1 to 65535\) \| `51820` \|", mesh)
    assert re.search(r"\| `value` \| [^|]+ \| `\"\"` \|", section("Taint"))
    assert "its defaults ([`SiteLifecycle`](#sitelifecycle))" in section("SiteSpec")
