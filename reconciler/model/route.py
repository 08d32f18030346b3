"""A route the node agent keeps: the ``routes`` entries of sites and pools.

The rules (reserved tables and protocols, device names, destinations) are
:mod:`reconciler.model.routerules`, which the agent shares; this is their pydantic form.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    model_validator,
)

from reconciler.model import keys, routerules
from reconciler.model.base import Model
from reconciler.model.invalid import fail
from reconciler.model.types import Cidr


def route_rule(kind: str, rule: Callable[[Any], Any], value: Any) -> Any:
    """``rule(value)``, its refusal as a validation error of ``kind``."""
    try:
        return rule(value)
    except routerules.RouteRuleError as error:
        raise fail(kind, "{text}", text=str(error)) from None


def _table(value: Any) -> int | str:
    table = route_rule("route_table", routerules.table_id, value)
    return "main" if table == keys.MAIN_TABLE else table


def _via(value: Any) -> str:
    if value == "leader":
        return "leader"
    return str(route_rule("ip_address", routerules.gateway, value))


def _device(value: Any) -> str:
    return str(route_rule("device", routerules.device_name, value))


def _destination(value: str) -> str:
    return str(route_rule("route_to", routerules.routable, value))


RouteTable = Annotated[
    int | str,
    BeforeValidator(_table),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "main"},
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 4294967295,
                    "not": {"enum": sorted(routerules.RESERVED_TABLES)},
                },
            ]
        }
    ),
]
Via = Annotated[
    str,
    BeforeValidator(_via),
    WithJsonSchema({"type": "string", "description": "an IP address or 'leader'"}),
]
Device = Annotated[str, BeforeValidator(_device), WithJsonSchema({"type": "string"})]


class Route(Model):
    """A route the node agent keeps on member nodes, marked with topoctl's protocol."""

    to: Annotated[Cidr, AfterValidator(_destination)] = Field(
        description="Destination: an IP address or CIDR, at most /8 wide (a default route, "
        "or part of one, is refused), never inside the Cluster document's mesh.subnet or "
        "network ranges."
    )
    via: Via | None = Field(
        None,
        description="Gateway: an IP address, or `leader` (the predicted leader's InternalIP). "
        "May be omitted when `dev` is given (a device route).",
    )
    dev: Device | None = Field(
        None, description="Output device, e.g. cilium_tunl (1 to 15 bytes, as Linux counts)."
    )
    onlink: StrictBool = Field(False, description="Treat the gateway as directly reachable.")
    on: Literal["all", "leader", "non-leaders"] = Field(
        "all", description="Which member nodes get the route."
    )
    metric: StrictInt = Field(
        0,
        ge=0,
        le=0xFFFFFFFF,
        description="Route priority (metric). For IPv6, 0 is 1024: the same slot.",
    )
    table: RouteTable = Field(
        "main",
        description="Routing table: main or a number; 0, 253 (default), 255 (local) and "
        "1107 (Kilo's) are refused.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        if self.via is None and self.dev is None:
            raise fail("route_target", "a route needs `via` (a gateway or leader), `dev`, or both")
        if self.via == "leader" and self.on == "leader":
            raise fail(
                "route_via_leader",
                "`via: leader` on `on: leader`: the leader cannot route via itself - use "
                "`on: non-leaders`",
            )
        if self.via not in (None, "leader"):
            family = ipaddress.ip_network(self.to).version
            if ipaddress.ip_address(self.via).version != family:
                raise fail(
                    "route_family",
                    "`via: {via}` is IPv{gw} but `to: {to}` is IPv{family}",
                    via=self.via,
                    to=self.to,
                    gw=10 - family,
                    family=family,
                )
        return self

    @property
    def table_id(self) -> int:
        """The numeric routing table (main is 254)."""
        return keys.MAIN_TABLE if self.table == "main" else int(self.table)
