"""Database plumbing: engines, sessions, metadata and migrations."""

from squall.db.base import Base
from squall.db.engine import Database

__all__ = ["Base", "Database"]
