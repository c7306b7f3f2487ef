"""Data statistics, schemas, validation and drift."""
