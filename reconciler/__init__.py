"""topoctl: a declarative GitOps reconciler for multi-location Kubernetes clusters meshed by Kilo."""

__version__ = "0.1.0"
