"""Which Talos machine-config form a Talos version takes (siderolabs/talos: the
KubeNodeConfig and KubeletConfig documents, pkg/machinery/config/types/k8s, from 1.14).

Apart from :mod:`.talos` so that the command line reads the default without importing
the renderer.
"""

from __future__ import annotations

import re
from typing import Literal

Form = Literal["machine", "documents"]  # v1alpha1 machine.* fields, or 1.14's documents

NEWEST_TALOS = "1.14"  # the default: the newest Talos whose config form topoctl knows
DOCUMENTS_SINCE = (1, 14)  # KubeNodeConfig and KubeletConfig
NODE_ANNOTATIONS_SINCE = (1, 8)  # machine.nodeAnnotations
_VERSION = re.compile(r"v?([0-9]+)\.([0-9]+)(?:\.[0-9]+)?(?:-[0-9A-Za-z.-]+)?")


class TalosVersionError(ValueError):
    """Not a Talos version topoctl can write a machine config for."""


def talos_form(version: str) -> Form:
    """The config form of a Talos version (``1.14``, ``v1.13.2``, ``1.14.0-beta.0``)."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise TalosVersionError(f"{version!r} is not a Talos version (e.g. 1.14 or v1.13.2)")
    found = (int(match.group(1)), int(match.group(2)))
    if found[0] != 1 or found < NODE_ANNOTATIONS_SINCE:
        raise TalosVersionError(
            f"Talos {version} is not supported: node annotations in the machine config need "
            "Talos 1.8 or later"
        )
    return "documents" if found >= DOCUMENTS_SINCE else "machine"
