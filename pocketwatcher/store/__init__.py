"""Persistence: PostgreSQL (the runner) and Parquet (exports for the workbench)."""
