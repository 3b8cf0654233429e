"""Storage: the on-disk index (generations, catalog, tantivy, FAISS) and the sharded layout."""
