"""Ingest stage: sources on disk -> documents -> paragraph-sized passages."""
