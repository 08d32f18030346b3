"""topoctl: declarative GitOps reconciler for multi-location Kubernetes clusters (Kilo)."""

__version__ = "0.1.0"
