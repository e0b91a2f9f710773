"""What every domain's routes share: request dependencies (sessions, settings, storage,
clock), the one mapping from domain errors to HTTP statuses, and OpenAPI bits."""
