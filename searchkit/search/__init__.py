"""Searching: the one query pipeline (engine), its shards, fusion, hits and highlights."""
