"""Load a BEIR-format folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) as a dataset.

Passage text is ``title + " " + text`` (stripped), as BEIR and MTEB embed it, so published numbers
are reproducible. Judgments with a score of 0 or below are not relevant.

Example::

    from llama_index_bge_finetune.evaluation.beir import load_beir
    from llama_index_bge_finetune.evaluation import evaluate_embeddings

    scifact = load_beir("data/scifact", split="test", query_source="user")
    evaluate_embeddings("sentence-transformers/all-MiniLM-L6-v2", scifact, k_values=(10,)).metrics["ndcg@10"]
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Union

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import DatasetError


def load_beir(folder: Union[str, os.PathLike], split: str = "test", query_source: Optional[str] = None) -> EmbeddingQAFinetuneDataset:
    """The queries of ``split`` that have judgments, the whole corpus, and the relevant ids."""
    root = Path(folder)
    files = {"corpus": root / "corpus.jsonl", "queries": root / "queries.jsonl", "qrels": root / "qrels" / f"{split}.tsv"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetError(f"{root} is not a BEIR folder: missing {', '.join(missing)}. It needs corpus.jsonl, "
                           f"queries.jsonl and qrels/{split}.tsv.")
    relevant: Dict[str, List[str]] = {}
    with open(files["qrels"], encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3 and float(row[2]) > 0:
                relevant.setdefault(row[0], []).append(row[1])
    corpus: Dict[str, str] = {}
    with open(files["corpus"], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                doc = json.loads(line)
                corpus[str(doc["_id"])] = (str(doc.get("title") or "") + " " + str(doc.get("text") or "")).strip()
    queries: Dict[str, str] = {}
    with open(files["queries"], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in relevant:
                    queries[str(q["_id"])] = q["text"]
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus,
                                      relevant_docs={q: relevant[q] for q in queries}, query_source=query_source)
