"""Pure values: the topology contract (pydantic) and observed/desired state. No I/O."""
