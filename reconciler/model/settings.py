"""The ``topoctl.io/agent`` contract: what the planner publishes and the node agent reads.

One versioned model for both sides. The planner writes it as compact, canonical JSON
(:meth:`AgentSettings.to_annotation`); the agent reads it back with
:meth:`AgentSettings.from_annotation`, which keeps the readable routes and names the
others, so one bad route never costs a node all of its routes. A format version the
agent does not know, or content that is not these settings, is a
:class:`SettingsFormatError` with a message meant for ``kubectl describe node``.

Both sides hold the annotation to one cap, stated here: at most :data:`MAX_BYTES` and
:data:`MAX_ROUTES`. The planner refuses to publish more; the agent refuses to read more
(:class:`SettingsTooLargeError`), whoever wrote it.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from reconciler.model import routerules
from reconciler.model.keys import DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE, TOPOCTL_AGENT

FORMAT_VERSION: Literal[1] = 1
MAX_BYTES: Final = 64 * 1024
"""The most a ``topoctl.io/agent`` value may hold, in bytes: a quarter of the 256 KiB
Kubernetes allows for all annotations of a Node, so labels, Kilo's and others'
annotations always fit beside it."""
MAX_ROUTES: Final = 1024
"""The most routes one node's settings may list."""
_INVALID = f"{TOPOCTL_AGENT} is not valid agent settings"


class SettingsFormatError(ValueError):
    """The agent annotation is missing, of an unknown version, or not agent settings."""


class SettingsTooLargeError(SettingsFormatError):
    """The agent annotation holds more bytes or routes than the cap: nothing of it is read."""


class AgentRoute(BaseModel):
    """One published route, ``via: leader`` already resolved to an address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str
    via: str | None = None
    dev: str | None = None
    table: StrictInt = MAIN_TABLE
    metric: StrictInt = 0
    onlink: StrictBool = False

    def as_json(self) -> dict[str, Any]:
        """The entry as the annotation holds it: unset gateway, device and onlink left out."""
        entry: dict[str, Any] = {"to": self.to, "table": self.table, "metric": self.metric}
        if self.via is not None:
            entry["via"] = self.via
        if self.dev is not None:
            entry["dev"] = self.dev
        if self.onlink:
            entry["onlink"] = True
        return entry

    def order(self) -> tuple[int, str, int]:
        """Routes are published sorted by slot."""
        return (self.table, self.to, self.metric)

    def __str__(self) -> str:
        return routerules.route_text(
            self.to, self.via, self.dev, self.table, self.metric, self.onlink
        )


class AgentSettings(BaseModel):
    """What one node's agent is told to do (version ``v`` of the contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    v: Literal[1] = FORMAT_VERSION
    external_ip_target: str | None = Field(None, alias="externalIPTarget")
    internal_ip_target: str | None = Field(None, alias="internalIPTarget")
    uninitialized_taint: Literal["remove", "keep"] = Field("remove", alias="uninitializedTaint")
    protocol: StrictInt = DEFAULT_ROUTE_PROTOCOL
    routes: tuple[AgentRoute, ...] = ()

    @property
    def removes_uninitialized_taint(self) -> bool:
        """Whether the agent lifts the cloud-provider taint once addresses are set."""
        return self.uninitialized_taint == "remove"

    def to_annotation(self) -> str:
        """Compact, canonical JSON: equal settings give equal bytes."""
        payload = {
            "v": self.v,
            "externalIPTarget": self.external_ip_target,
            "internalIPTarget": self.internal_ip_target,
            "uninitializedTaint": self.uninitialized_taint,
            "protocol": self.protocol,
            "routes": [r.as_json() for r in sorted(self.routes, key=AgentRoute.order)],
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_annotation(cls, raw: str | None) -> tuple[AgentSettings, tuple[str, ...]]:
        """The settings with every readable route, and one problem per unreadable route.

        Raises SettingsFormatError when there is no annotation, its version is not one
        this agent reads, or it is not agent settings at all; SettingsTooLargeError (before
        anything is parsed, where it can) when it holds more than the cap.
        """
        if raw is None:
            raise SettingsFormatError(
                f"no {TOPOCTL_AGENT} annotation yet: run topoctl apply "
                "(or the controller) for this node"
            )
        size = len(raw.encode())
        if size > MAX_BYTES:
            raise SettingsTooLargeError(
                f"{TOPOCTL_AGENT} holds {size} bytes, more than the {MAX_BYTES} a node's "
                "settings may: nothing of it is used"
            )
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise SettingsFormatError(
                f"{TOPOCTL_AGENT} is not valid agent settings: {err}"
            ) from None
        if not isinstance(data, dict):
            raise SettingsFormatError(
                f"{_INVALID}: a JSON object is expected, not {type(data).__name__}"
            )
        version = data.get("v")
        if version != FORMAT_VERSION:
            raise SettingsFormatError(
                f"{TOPOCTL_AGENT} has format version {version!r}; this agent reads version "
                f"{FORMAT_VERSION}: run an agent and a planner of the same topoctl release"
            )
        entries = data.pop("routes", None)
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise SettingsFormatError(
                f"{TOPOCTL_AGENT} is not valid agent settings: routes: a list is expected"
            )
        if len(entries) > MAX_ROUTES:
            raise SettingsTooLargeError(
                f"{TOPOCTL_AGENT} lists {len(entries)} routes, more than the {MAX_ROUTES} a "
                "node's settings may: nothing of it is used"
            )
        try:
            settings = cls.model_validate(data)
        except ValidationError as err:
            raise SettingsFormatError(f"{_INVALID}: {_problems(err)}") from None
        routes: list[AgentRoute] = []
        invalid: list[str] = []
        for entry in entries:
            try:
                routes.append(AgentRoute.model_validate(entry))
            except ValidationError as err:
                invalid.append(f"{_clip(repr(entry))}: {_problems(err)}")
        return settings.model_copy(update={"routes": tuple(routes)}), tuple(invalid)


def _problems(err: ValidationError) -> str:
    """Pydantic's errors, one ``field: message`` each, for a person."""
    parts = []
    for detail in err.errors(include_url=False):
        where = ".".join(str(p) for p in detail["loc"])
        parts.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    return "; ".join(parts)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
