"""Adapters: the only modules that talk to Kubernetes, the kernel, git or the network."""
