"""Delivery of stored media over signed, expiring URLs."""
