"""topoctl: declarative GitOps reconciler for multi-location Kubernetes clusters (Kilo)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("topoctl")  # the git tag it was built from (setuptools-scm)
except PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
    __version__ = "0.0.0"
