"""Helpers for the integration tests: a small corpus, and a MiniLM fine-tuned to learn a made-up word.

"zorblat" means the quarterly estimated tax payment. The base model cannot know that, so for
"When is my zorblat due?" it ranks another "due" passage first; a few MultipleNegativesRankingLoss
steps on pairs that use the word teach it, and the fine-tuned model ranks the tax passage first.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

TAX_ID = "tax"
QUERY = "When is my zorblat due?"

PASSAGES: Dict[str, str] = {
    TAX_ID: "Quarterly estimated tax payments must reach the revenue office by the 15th of April, June, September and January.",
    "library": "Library books are due back three weeks after checkout; late returns cost ten cents a day.",
    "rent": "Rent is due on the first day of each month and can be paid by bank transfer.",
    "homework": "Homework for the chemistry class is due every Friday before noon.",
    "baby": "A baby is due about forty weeks after the last menstrual period.",
    "invoice": "Invoices from suppliers are due thirty days after the delivery date.",
    "garden": "Tomatoes grow best in full sun with regular watering and rich soil.",
    "train": "The night train to Vienna leaves the central station at 22:40 every day.",
    "bread": "Sourdough bread needs a starter, flour, water and salt, and rises slowly overnight.",
    "python": "Python lists are mutable sequences that can hold items of different types.",
    "volcano": "Volcanoes erupt when pressure from molten rock beneath the crust is released.",
    "chess": "In chess, castling moves the king two squares towards a rook.",
}

TRAIN_PAIRS: List[Tuple[str, str]] = [
    ("zorblat", TAX_ID),
    ("how do I pay the zorblat", TAX_ID),
    ("zorblat deadline", TAX_ID),
    ("what is a zorblat payment", TAX_ID),
    ("late zorblat", TAX_ID),
    ("when are library books due", "library"),
    ("monthly rent date", "rent"),
    ("chemistry homework deadline", "homework"),
    ("pregnancy due date", "baby"),
    ("supplier invoice payment terms", "invoice"),
    ("how to grow tomatoes", "garden"),
    ("night train to Vienna", "train"),
    ("sourdough ingredients", "bread"),
    ("are python lists mutable", "python"),
    ("why do volcanoes erupt", "volcano"),
    ("how does castling work", "chess"),
]

_CACHE: Dict[str, Path] = {}


def documents() -> List["Document"]:  # noqa: F821
    """One LlamaIndex Document per passage, with its key as ``doc_id`` and in the metadata."""
    from llama_index.core import Document

    return [Document(text=t, doc_id=k, metadata={"key": k}, excluded_embed_metadata_keys=["key"])
            for k, t in PASSAGES.items()]


def persist_index(embed_model: "BaseEmbedding", path: Path, record: bool = True) -> "VectorStoreIndex":  # noqa: F821
    """Build a ``VectorStoreIndex`` of :func:`documents` with ``embed_model``, record the model (unless
    ``record=False``, as plain LlamaIndex would) and persist it to ``path``."""
    from llama_index.core import VectorStoreIndex

    from llama_index_bge_finetune.integration import record_embed_model

    index = VectorStoreIndex.from_documents(documents(), embed_model=embed_model)
    if record:
        record_embed_model(index)
    index.storage_context.persist(str(path))
    return index


def finetune_zorblat(base_path: Path, out_dir: Path, steps: int = 8, seed: int = 0) -> Path:
    """Fine-tune ``base_path`` on :data:`TRAIN_PAIRS` with MultipleNegativesRankingLoss; cached per process."""
    key = str(base_path)
    if key in _CACHE and _CACHE[key].is_dir():
        return _CACHE[key]
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(str(base_path), device="cpu")
    loss = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model.train()
    for _ in range(steps):
        batch = rng.sample(TRAIN_PAIRS, 8)
        if not any(d == TAX_ID for _, d in batch):
            batch[0] = TRAIN_PAIRS[rng.randrange(5)]
        feats = [model.preprocess([q for q, _ in batch]), model.preprocess([PASSAGES[d] for _, d in batch])]
        value = loss(feats, None)
        opt.zero_grad()
        value.backward()
        opt.step()
    out = Path(out_dir) / "zorblat-model"
    shutil.rmtree(out, ignore_errors=True)
    model.save(str(out))
    _CACHE[key] = out
    return out
