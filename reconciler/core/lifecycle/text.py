"""Short human texts for lifecycle decisions: plans, Events and logs print these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta


def human_duration(span: timedelta) -> str:
    """``14m``, ``1h5m``, ``45s``, ``2d3h``: the two largest units, no zero padding."""
    total = max(0, int(span.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return "".join(shown[:2]) or "0s"


def percent(fraction: float, digits: int = 0) -> str:
    """``0.55`` -> ``55 %``; ``2 / 3`` -> ``67 %``; with ``digits=1``, ``66.7 %``."""
    return f"{round(fraction * 100, digits):.{digits}f} %"


def ratio_text(share: float, limit: float) -> str:
    """``67 % >= 55 %`` (rounding is monotonic, so it never reads false)."""
    return f"{percent(share)} >= {percent(limit)}"


def deletion_text(node: str, not_ready_for: timedelta, silent: Sequence[str], verb: str) -> str:
    """``would delete fsn1-worker-x9m4t: NotReady 14m, no answer from 10.10.0.7, 203.0.113.7``."""
    return (
        f"{verb} {node}: NotReady {human_duration(not_ready_for)}, "
        f"no answer from {', '.join(silent)}"
    )


def site_disrupted_text(site: str, impaired: int, members: int, limit: float, silent: bool) -> str:
    """``withheld in hetzner-fsn1: 4 of 6 nodes NotReady (67 % >= 55 %)``."""
    state = "NotReady or silent" if silent else "NotReady"
    ratio = ratio_text(impaired / members if members else 0.0, limit)
    return f"withheld in {site}: {impaired} of {members} nodes {state} ({ratio})"
