"""Audits the CLI runs: the books against themselves (``squall usage verify``: counters and
rollups recomputed from the ledger) and against the storage backend (``squall storage
reconcile``). They read one snapshot and report; they never fix anything."""
