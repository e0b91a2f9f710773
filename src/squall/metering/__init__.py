"""Metering: the append-only usage ledger, per-key counters, daily rollups and usage views."""
