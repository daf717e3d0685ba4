"""Cross-encoder samples for the reranking tests, built from the training tests' topic dataset."""

from __future__ import annotations

from typing import List

from llama_index_bge_finetune.reranking.dataset import CrossEncoderFinetuningDatasetSample
from tests.training_data import topics_dataset


def topic_samples(n_topics: int = 12, negatives: int = 3, offset: int = 0) -> List[CrossEncoderFinetuningDatasetSample]:
    """Per question: its topic's passage (score 1, first-stage score 0.9) and ``negatives`` other passages (0, lower)."""
    ds = topics_dataset(n_topics, 1, offset=offset)
    docs = list(ds.corpus)
    out = []
    for i, (qid, query) in enumerate(ds.queries.items()):
        pos = ds.relevant_docs[qid][0]
        out.append(CrossEncoderFinetuningDatasetSample(query, ds.corpus[pos], 1, 0.9))
        for j in range(1, negatives + 1):
            neg = docs[(i + j) % len(docs)]
            out.append(CrossEncoderFinetuningDatasetSample(query, ds.corpus[neg], 0, 0.9 - 0.1 * j))
    return out
