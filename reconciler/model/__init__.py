"""Pure values: the topology contract (pydantic) and the loaded Topology, diagnostics,
observed and desired node state, every key. No I/O."""
