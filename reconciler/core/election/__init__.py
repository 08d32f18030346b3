"""Leader election on a Lease, as client-go's: the record and its timing, and the pure
state machine one candidate steps through (clock passed in, decisions as data)."""
