"""Squall: a self-hosted, multi-tenant media ingest API with exact usage metering."""

__version__ = "0.1.0"
