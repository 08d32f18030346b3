"""The agent's settings as published on its own Node (``topoctl.io/agent``), with the
routes built as kernel routes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.core.agent.routes import InvalidRouteError, KernelRoute
from reconciler.model import keys
from reconciler.model.settings import AgentSettings


@dataclass(frozen=True)
class Published:
    """This node's agent settings, with the routes built as kernel routes.

    ``invalid_routes`` names every published route that could not be used.
    """

    settings: AgentSettings
    routes: tuple[KernelRoute, ...]
    invalid_routes: tuple[str, ...] = ()

    @property
    def protocol(self) -> int:
        """The rtnetlink protocol that marks topoctl's routes."""
        return self.settings.protocol


def parse_settings(annotations: Mapping[str, str]) -> Published:
    """Read ``topoctl.io/agent``; routes that cannot be built are reported, not fatal.

    Raises SettingsFormatError when the annotation is missing, of an unknown format version
    or not agent settings.
    """
    settings, invalid = AgentSettings.from_annotation(annotations.get(keys.TOPOCTL_AGENT))
    routes: list[KernelRoute] = []
    problems = list(invalid)
    for entry in settings.routes:
        try:
            routes.append(
                KernelRoute.build(
                    entry.to,
                    gateway=entry.via,
                    dev=entry.dev,
                    table=entry.table,
                    metric=entry.metric,
                    onlink=entry.onlink,
                    protocol=settings.protocol,
                )
            )
        except InvalidRouteError as err:
            problems.append(str(err))
    return Published(settings, tuple(routes), tuple(problems))
