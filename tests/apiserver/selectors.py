"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and /fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tests.apiserver.errors import ApiError, bad_request


@dataclass(frozen=True)
class Requirement:
    """One label requirement: `key op values`."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present or value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_TOKEN = re.compile(r"\s*(?:(?P<op>!=|==|=|!|>|<|\(|\)|,)|(?P<word>[^\s!=<>(),]+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request(f"unable to parse requirement: found '{text[pos:]}'")
        if m.group("op"):
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (f,g),!h,i` into requirements; 400 BadRequest when malformed."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect_value(pos: int) -> tuple[str, int]:
        if pos < len(toks) and toks[pos][0] == "word":
            return toks[pos][1], pos + 1
        return "", pos  # an empty value is legal: `a=`

    while i < len(toks):
        kind, tok = toks[i]
        if kind == "op" and tok == "!":
            if i + 1 >= len(toks) or toks[i + 1][0] != "word":
                raise bad_request("unable to parse requirement: expected a key after '!'")
            reqs.append(Requirement(_check_key(toks[i + 1][1]), "!"))
            i += 2
        elif kind == "word":
            key = _check_key(tok)
            i += 1
            if i >= len(toks) or toks[i] == ("op", ","):
                reqs.append(Requirement(key, "exists"))
            elif toks[i][0] == "op" and toks[i][1] in ("=", "==", "!="):
                op = "!=" if toks[i][1] == "!=" else "="
                value, i = expect_value(i + 1)
                reqs.append(Requirement(key, op, (_check_value(value),)))
            elif toks[i][0] == "op" and toks[i][1] in (">", "<"):
                op = "gt" if toks[i][1] == ">" else "lt"
                value, i = expect_value(i + 1)
                try:
                    int(value)
                except ValueError:
                    raise bad_request(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                        f"be an integer, got {value!r}"
                    ) from None
                reqs.append(Requirement(key, op, (value,)))
            elif toks[i][0] == "word" and toks[i][1] in ("in", "notin"):
                op = toks[i][1]
                i += 1
                if i >= len(toks) or toks[i] != ("op", "("):
                    raise bad_request(f"unable to parse requirement: expected '(' after {op}")
                i += 1
                values: list[str] = []
                while True:
                    if i < len(toks) and toks[i][0] == "word":
                        values.append(_check_value(toks[i][1]))
                        i += 1
                    if i < len(toks) and toks[i] == ("op", ","):
                        i += 1
                        continue
                    if i < len(toks) and toks[i] == ("op", ")"):
                        i += 1
                        break
                    raise bad_request("unable to parse requirement: unterminated value set")
                if not values:
                    values = [""]
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                raise bad_request(f"unable to parse requirement: unexpected '{toks[i][1]}'")
        else:
            raise bad_request(f"unable to parse requirement: unexpected '{tok}'")
        if i < len(toks):
            if toks[i] != ("op", ","):
                raise bad_request(f"unable to parse requirement: expected ',' got '{toks[i][1]}'")
            i += 1
    return reqs


def _check_key(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if not re.fullmatch(_KEY, key) or not name or len(name) > 63 or key.count("/") > 1:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(_VALUE, value):
        raise bad_request(f"unable to parse requirement: invalid label value: {value!r}")
    return value


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    """Whether all requirements hold for a label set."""
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    """One field requirement: `field=value` or `field!=value`."""

    field: str
    value: str
    negate: bool


FieldGetter = Callable[[dict[str, object]], str]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(
    text: str | None, supported: Mapping[str, FieldGetter]
) -> list[FieldRequirement]:
    """Parse `metadata.name=a,spec.unschedulable!=true`; 400 for unsupported field labels."""
    if not text or not text.strip():
        return []
    out: list[FieldRequirement] = []
    for raw in re.split(r"(?<!\\),", text):
        part = raw.strip()
        if not part:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(!=|==|=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3))
        if field not in supported:
            raise ApiError(400, f"field label not supported: {field}")
        out.append(FieldRequirement(field, value, op == "!="))
    return out


def fields_match(
    reqs: list[FieldRequirement], obj: dict[str, object], supported: Mapping[str, FieldGetter]
) -> bool:
    """Whether an object satisfies all field requirements."""
    for req in reqs:
        actual = supported[req.field](obj)
        if (actual == req.value) == req.negate:
            return False
    return True
