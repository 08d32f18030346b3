"""Loading: topology files as bytes in, a validated :class:`~reconciler.model.topology.Topology`
and every diagnostic (file:line:col) out. The hardened YAML reader, the per-document
models' validation and the rules across documents. Pure."""
