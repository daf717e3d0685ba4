"""First-stage retrieval parts: dense search, BM25, and the fusion of their scores."""
