"""Clients and their API keys: generation, hashing, authentication and per-key limits."""
