"""Small real datasets for the training tests: CPython's own help topics as passages."""

from __future__ import annotations

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset


def topics_dataset(n_passages: int = 24, questions_per_passage: int = 2, offset: int = 0) -> EmbeddingQAFinetuneDataset:
    """Passages = the first 400 characters of Python help topics; questions name the topic.

    Several questions share a passage, which is the normal case the no-duplicates sampler handles.
    """
    from pydoc_data.topics import topics

    names = sorted(topics)[offset : offset + n_passages]
    corpus = {f"doc-{name}": " ".join(topics[name].split())[:400] for name in names}
    templates = ["What does the Python {} topic explain?", "How is {} used in Python?", "Explain {} in Python."]
    queries, relevant = {}, {}
    for name in names:
        for i in range(questions_per_passage):
            qid = f"q-{name}-{i}"
            queries[qid] = templates[i % len(templates)].format(name)
            relevant[qid] = [f"doc-{name}"]
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant, query_source="test")
