"""A small real dataset for evaluation tests: CPython's own help topics as passages."""

from __future__ import annotations

from typing import Optional

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset


def evaluation_topics_dataset(n_docs: int = 60, query_source: Optional[str] = "user") -> EmbeddingQAFinetuneDataset:
    """Passages = the first 400 characters of ``n_docs`` pydoc topics; one query per topic, a few with two answers."""
    from pydoc_data.topics import topics

    names = sorted(topics)[:n_docs]
    corpus = {f"doc-{n}": " ".join(topics[n].split())[:400] for n in names}
    queries, relevant = {}, {}
    for i, n in enumerate(names):
        words = " ".join(topics[n].split()).split()
        queries[f"q-{n}"] = " ".join(words[5:17]) or n
        relevant[f"q-{n}"] = [f"doc-{n}"] + ([f"doc-{names[i - 1]}"] if i % 7 == 3 else [])
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant, query_source=query_source)
