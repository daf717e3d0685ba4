"""The engine's validation score, measured on the model as it is saved: at the saved model's window.

Training reads passages at the base's window (all-MiniLM-L6-v2: 256 tokens) while the saved model
may read more of each one (``max_seq_length="auto"``, :mod:`llama_index_bge_finetune.training.window`).
A validation score taken at the training window describes a model nobody uses: on long passages
the two disagree, and keep-best would pick its checkpoint by the wrong one. So every validation
encode (the base's score, each mid-run evaluation, the interpolated model's) reads at the saved
window, and training is left at its own.

When the window grew past the base's and a validation set is given, the engine also reads the
validation set at the base's window once after training and keeps the window that scores higher
(:func:`llama_index_bge_finetune.training.window.confirmed_by_validation`): passage length is a good
prior, the user's own questions are better evidence.

Example::

    from llama_index_bge_finetune.training.validation import validation_evaluator

    evaluator = validation_evaluator(val_dataset, window=512, query_prompt=None)
    scores = evaluator(model)          # encodes at 512 tokens; model.max_seq_length is restored after
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from sentence_transformers.evaluation import InformationRetrievalEvaluator

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.training.window import read_at


class WindowedRetrievalEvaluator(InformationRetrievalEvaluator):
    """sentence-transformers' retrieval evaluator, encoding at ``window`` tokens whatever the model trains at.

    Args:
        window: the tokens each text is read at during evaluation (the saved model's ``max_seq_length``).
        *args, **kwargs: as for ``InformationRetrievalEvaluator``.
    """

    def __init__(self, *args: Any, window: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = window

    def at(self, window: int) -> "WindowedRetrievalEvaluator":
        """The same evaluator reading at ``window`` tokens."""
        other = copy.copy(self)
        other.window = window
        return other

    def __call__(self, model: Any, *args: Any, **kwargs: Any) -> Dict[str, float]:
        with read_at(model, self.window):
            return super().__call__(model, *args, **kwargs)


def validation_evaluator(dataset: EmbeddingQAFinetuneDataset, window: int,
                         query_prompt: Optional[str]) -> WindowedRetrievalEvaluator:
    """The evaluator the engine validates with: nDCG/MRR/hit rate at 1-10 over ``dataset``, read at ``window`` tokens."""
    return WindowedRetrievalEvaluator(
        dataset.queries, dataset.corpus, {q: set(d) for q, d in dataset.relevant_docs.items()}, name="val",
        query_prompt=query_prompt, batch_size=64, write_csv=False, show_progress_bar=False,
        accuracy_at_k=[1, 5, 10], precision_recall_at_k=[5, 10], window=window,
    )
