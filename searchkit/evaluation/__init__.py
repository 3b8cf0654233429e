"""Relevance: BEIR evaluation and fusion tuning, through the query pipeline."""
