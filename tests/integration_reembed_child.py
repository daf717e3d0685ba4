"""Child process for the kill tests: re-embed, then SIGKILL itself after N batches (like an OOM kill).

Usage: python -m tests.integration_reembed_child <model> <kill_after> simple <persist_dir>
       python -m tests.integration_reembed_child <model> <kill_after> qdrant <qdrant_path> <collection>
       python -m tests.integration_reembed_child <model> <kill_after> chroma <chroma_path> <collection>

With ``$REEMBED_CALL_LOG`` set, the model is a :class:`CountingEmbedding` that appends every text
it embeds to that file, so a test can count encoder calls per node across the kill and the rerun.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, List

from llama_index.embeddings.huggingface import HuggingFaceEmbedding


class CountingEmbedding(HuggingFaceEmbedding):
    """A ``HuggingFaceEmbedding`` that logs every passage it embeds (one JSON string per line) to ``$REEMBED_CALL_LOG``."""

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        with open(os.environ["REEMBED_CALL_LOG"], "a", encoding="utf-8") as f:
            f.writelines(json.dumps(t) + "\n" for t in texts)
            f.flush()
            os.fsync(f.fileno())
        return super()._get_text_embeddings(texts)


def embed_model_for(model: str) -> Any:
    """The counting model when ``$REEMBED_CALL_LOG`` is set, else the fine-tuned model as apps load it."""
    from llama_index_bge_finetune.integration import from_finetuned

    if os.environ.get("REEMBED_CALL_LOG"):
        return CountingEmbedding(model_name=model, device="cpu")
    return from_finetuned(model)


def main(argv: list) -> None:
    from llama_index.core import VectorStoreIndex

    from llama_index_bge_finetune.integration import reembed_index

    model, kill_after, kind = argv[0], int(argv[1]), argv[2]

    def on_batch(done: int, total: int) -> None:
        on_batch.calls += 1
        if on_batch.calls >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    on_batch.calls = 0
    embed_model = embed_model_for(model)
    if kind == "simple":
        reembed_index(argv[3], embed_model, batch_size=2, show_progress=False, on_batch=on_batch)
        return
    if kind == "qdrant":
        from llama_index.vector_stores.qdrant import QdrantVectorStore
        from qdrant_client import QdrantClient

        store = QdrantVectorStore(client=QdrantClient(path=argv[3]), collection_name=argv[4])
    else:
        import chromadb
        from llama_index.vector_stores.chroma import ChromaVectorStore

        store = ChromaVectorStore(chroma_collection=chromadb.PersistentClient(path=argv[3]).get_collection(argv[4]))
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
    reembed_index(index, embed_model, batch_size=2, show_progress=False, on_batch=on_batch)


if __name__ == "__main__":
    main(sys.argv[1:])
