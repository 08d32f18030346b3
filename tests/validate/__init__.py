"""`topoctl validate` driven through the real CLI on files written to a temporary directory."""
