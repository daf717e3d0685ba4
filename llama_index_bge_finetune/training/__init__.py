"""Fine-tuning: the drop-in engine, its losses, hard-negative mining and the forgetting guard.

Example::

    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    engine = SentenceTransformersFinetuneEngine("train_dataset.json", model_id="BAAI/bge-small-en-v1.5",
                                                model_output_path="exp_finetune")
    engine.finetune()
    embed_model = engine.get_finetuned_model()
"""

from llama_index_bge_finetune.training.engine import SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.forgetting import ForgettingGuard
from llama_index_bge_finetune.training.hard_negatives import HardNegativeMiner
from llama_index_bge_finetune.training.losses import LOSS_NAMES, build_loss
from llama_index_bge_finetune.training.result import FinetuneResult

__all__ = [
    "SentenceTransformersFinetuneEngine",
    "FinetuneResult",
    "HardNegativeMiner",
    "ForgettingGuard",
    "build_loss",
    "LOSS_NAMES",
]
