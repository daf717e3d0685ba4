"""Child process for the kill test: re-embed, then SIGKILL itself after N batches (like an OOM kill).

Usage: python -m tests.integration_reembed_child <model> <kill_after> simple <persist_dir>
       python -m tests.integration_reembed_child <model> <kill_after> qdrant <qdrant_path> <collection>
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list) -> None:
    from llama_index_bge_finetune.integration import from_finetuned, reembed_index

    model, kill_after, kind = argv[0], int(argv[1]), argv[2]

    def on_batch(done: int, total: int) -> None:
        on_batch.calls += 1
        if on_batch.calls >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    on_batch.calls = 0
    embed_model = from_finetuned(model)
    if kind == "simple":
        reembed_index(argv[3], embed_model, batch_size=2, show_progress=False, on_batch=on_batch)
    else:
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.qdrant import QdrantVectorStore
        from qdrant_client import QdrantClient

        store = QdrantVectorStore(client=QdrantClient(path=argv[3]), collection_name=argv[4])
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
        reembed_index(index, embed_model, batch_size=2, show_progress=False, on_batch=on_batch)


if __name__ == "__main__":
    main(sys.argv[1:])
