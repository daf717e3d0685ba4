"""The reranker engine: a drop-in replacement for llama-index-finetuning's ``CrossEncoderFinetuneEngine``.

Example::

    from llama_index_bge_finetune.reranking import CrossEncoderFinetuneEngine, samples_from_qa_dataset

    samples = samples_from_qa_dataset(train, "exp_finetune")       # or the LLM-judged path
    engine = CrossEncoderFinetuneEngine(samples, model_id="cross-encoder/ms-marco-MiniLM-L-6-v2",
                                        model_output_path="exp_reranker")
    engine.finetune()
    rerank = engine.get_finetuned_model(top_n=5)  # a SentenceTransformerRerank node postprocessor
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from llama_index_bge_finetune.errors import DatasetError, TrainingError
from llama_index_bge_finetune.reranking.dataset import (
    CrossEncoderFinetuningDatasetSample, coerce_samples, group_by_query,
)
from llama_index_bge_finetune.reranking.losses import build_ce_loss, training_rows
from llama_index_bge_finetune.reranking.options import RerankingOptions
from llama_index_bge_finetune.reranking.scoring import CONFIG_NAME, DEFAULT_WEIGHTS, choose_blend_weight
from llama_index_bge_finetune.training import core
from llama_index_bge_finetune.training.model_card import _safe, card_fields
from llama_index_bge_finetune.training.options import given_loss_model, option_attributes
from llama_index_bge_finetune.training.result import FinetuneResult
from llama_index_bge_finetune.training.trainer_output import attach_trainer_output

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
DEFAULT_RERANKER_BASE = "cross-encoder/ms-marco-MiniLM-L-6-v2"
_warned_bi_encoder: set = set()
#: A first stage at or above this validation nDCG@10 leaves a reranker nothing to show (trained-on questions).
SATURATED_NDCG = 0.99


@option_attributes(RerankingOptions)
class CrossEncoderFinetuneEngine:
    """Fine-tunes a cross-encoder reranker on judged (query, passage) samples.

    The first nine arguments are llama-index-finetuning 0.4.2's, with the same meaning. What is
    better: the modern sentence-transformers cross-encoder trainer; a listwise loss over each
    query's candidates by default; checkpoints under the output folder with resume after a kill
    and the best validated weights kept (the training core the embedding engine uses); no crash
    without a validation set; a model card; a start from a bi-encoder's weights where no
    cross-encoder can be downloaded; and a guard: after training, the reranker's blend with the
    first stage's scores is chosen on validation queries (``reranker_config.json``), and a reranker
    that does not beat the first stage beyond noise (a one-sided paired test over those queries,
    p < 0.05) keeps the first stage's order; the decision and its numbers are in the config and card.

    Every argument but the datasets is checked when the engine is built and kept in :attr:`options`
    (:class:`~llama_index_bge_finetune.reranking.options.RerankingOptions`), and each is also an
    attribute under its own name: ``engine.max_length`` reads ``engine.options.max_length``.

    Args:
        dataset: training samples (ours or llama-index-finetuning's ``CrossEncoderFinetuningDatasetSample``,
            dicts, or a JSONL path from :func:`~llama_index_bge_finetune.reranking.save_samples`).
        model_id: base model: a cross-encoder (hub id or folder), or a sentence-transformers
            bi-encoder folder (its encoder weights with a new 1-label head).
        model_output_path: folder that receives the reranker (and ``checkpoints/``).
        batch_size: training rows per batch (a row is a query with its positive and negatives for
            the listwise loss, one pair for ``"bce"``).
        val_dataset: validation samples, grouped per query in first-stage order: best each query's
            retrieved top-k from :func:`~llama_index_bge_finetune.reranking.candidates_from_qa_dataset`
            on questions the first stage was not trained on (the blend guard compares reranker and
            first stage on them). ``None``: a ``validation_fraction`` of the training queries is held
            out when there are enough (their mined negatives score below the positive by construction,
            so there the guard keeps the first stage's order).
        loss: ``None`` (``"listwise"``), a name from ``CE_LOSS_NAMES`` or a ready loss module.
        epochs: passes over the data.
        show_progress_bar: show progress bars; without them the trainer's log lines go to this
            package's logger at DEBUG instead of stdout.
        evaluation_steps: evaluate every this many steps (with validation data; at least twice per run).
        learning_rate: learning rate of the encoder.
        head_learning_rate: learning rate of the classification head; ``None``: 30x ``learning_rate``
            when the head is new (a start from a bi-encoder), else ``learning_rate``.
        max_length: token limit of a (query, passage) pair in training and inference.
        warmup_ratio, weight_decay, seed, lr_scheduler_type: the optimiser schedule.
        precision: ``"auto"``, ``"fp32"``, ``"fp16"`` (GPU) or ``"bf16"`` (see the training core).
        attention_dropout: attention-probability dropout while training (0: fused attention kernels, faster on CPU).
        validation_fraction: share of training queries held out when no ``val_dataset`` is given.
        blend_weights: reranker weights tried on validation (0 = first stage only is always tried).
        save_checkpoints, resume_from_checkpoint, checkpoint_save_steps, checkpoint_save_seconds,
            checkpoint_save_total_limit: as in the embedding engine.
        device: torch device (``None``: the accelerator if any).
        trust_remote_code: passed to ``CrossEncoder``.
        logging_steps: steps between loss log lines.
    """

    def __init__(
        self,
        dataset: Any,
        model_id: str = DEFAULT_RERANKER_BASE,
        model_output_path: PathLike = "exp_finetune",
        batch_size: int = 16,
        val_dataset: Optional[Any] = None,
        loss: Optional[Any] = None,
        epochs: float = 2,
        show_progress_bar: bool = True,
        evaluation_steps: int = 50,
        *,
        learning_rate: float = 3e-5,
        head_learning_rate: Optional[float] = None,
        max_length: int = 256,
        warmup_ratio: float = 0.1,
        weight_decay: float = 0.01,
        lr_scheduler_type: str = "linear",
        seed: int = 42,
        precision: str = "auto",
        attention_dropout: Optional[float] = 0.0,
        validation_fraction: float = 0.1,
        blend_weights: Sequence[float] = DEFAULT_WEIGHTS,
        save_checkpoints: Optional[bool] = None,
        resume_from_checkpoint: Union[bool, PathLike] = False,
        checkpoint_save_steps: Optional[int] = None,
        checkpoint_save_seconds: Optional[float] = 300.0,
        checkpoint_save_total_limit: int = 0,
        device: Optional[str] = None,
        trust_remote_code: bool = False,
        logging_steps: int = 10,
    ) -> None:
        self.options = RerankingOptions.from_arguments(locals())  # checked; see reranking/options.py
        self.dataset = _training_samples(dataset)
        self.val_dataset = coerce_samples(val_dataset, "validation dataset") if val_dataset is not None else None
        self.result: Optional[FinetuneResult] = None
        self.blend: Dict[str, Any] = {}
        self._model: Any = given_loss_model(loss)
        self.new_head = False

    @property
    def checkpoint_path(self) -> str:
        """Where checkpoints go: ``<model_output_path>/checkpoints``."""
        return self.options.checkpoint_path

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> Any:
        """The ``CrossEncoder`` being fine-tuned (loaded on first use)."""
        if self._model is None:
            self._model, self.new_head = load_cross_encoder(self.model_id, self.max_length, self.device, self.trust_remote_code)
            self.max_length = int(self._model.max_seq_length)
        return self._model

    def hyperparameters(self) -> Dict[str, Any]:
        """Every setting that shapes the result, for reports and the model card."""
        return {
            "base_model": self.model_id, "loss": self.options.loss_name, "batch_size": self.batch_size, "epochs": self.epochs,
            "learning_rate": self.learning_rate, "head_learning_rate": self.options.head_lr(self.new_head),
            "max_length": self.max_length,
            "warmup_ratio": self.warmup_ratio, "weight_decay": self.weight_decay, "lr_scheduler_type": self.lr_scheduler_type,
            "seed": self.seed, "precision": self.precision,
            "attention_dropout": "model default" if self.attention_dropout is None else self.attention_dropout,
        }

    # ------------------------------------------------------------------ training
    def finetune(self, **train_kwargs: Any) -> None:
        """Train, choose the blend with the first stage on validation, and save to ``model_output_path``.

        ``train_kwargs`` override fields of ``CrossEncoderTrainingArguments``. The outcome is in
        :attr:`result`; the validation comparison (first stage, reranker, chosen blend) in :attr:`blend`.
        """
        started = time.perf_counter()
        model = self.model
        result = FinetuneResult(model_path=self.model_output_path, hyperparameters=self.hyperparameters())
        train, val = self._split()
        name = self.options.loss_name if isinstance(self.loss, str) or self.loss is None else "bce"
        table = _to_table(training_rows(name, train))
        result.pairs = len(train)
        result.pairs_with_negatives = sum(1 for s in train if s.score <= 0.5)
        loss = self.loss if self.loss is not None and not isinstance(self.loss, str) else build_ce_loss(name, model)
        evaluator = _reranking_evaluator(val) if val else None

        resume = core.resolve_resume(self.resume_from_checkpoint, self.checkpoint_path)
        if resume:
            result.resumed_from_step = core.checkpoint_step(resume)
            logger.info("Resuming from %s (step %d).", resume, result.resumed_from_step)
        trainer, keep_best = self._build_trainer(model, table, loss, evaluator, result, resume, train_kwargs)
        output = core.run_trainer(trainer, resume, self.attention_dropout)
        core.record_training(result, output, trainer)
        if keep_best is not None:
            keep_best.restore(model, result.steps)

        if val:
            self.blend = self._choose_blend(model, val)
            result.evaluation = {k: v for k, v in self.blend.items() if isinstance(v, dict) and k not in ("weights", "decision")}
        else:
            self.blend = {"blend_weight": 1.0, "note": "no validation data: the reranker's order is used unchecked"}
            logger.warning("No validation queries (pass val_dataset, or more training queries for the automatic "
                           "hold-out): the reranker's order is used without checking it beats the first stage.")
        core.finish(trainer, result, started, self.model_output_path, self.checkpoint_path, self.save_checkpoints,
                    self._save)
        self.result = result
        logger.info("Fine-tuned reranker %s in %.1f s (%d steps, final loss %s), blend weight %s -> %s",
                    self.model_id, result.train_seconds, result.steps,
                    f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a",
                    self.blend.get("blend_weight"), self.model_output_path)

    def _split(self) -> Tuple[List[CrossEncoderFinetuningDatasetSample], List[CrossEncoderFinetuningDatasetSample]]:
        """(train, validation) samples; validation held out by query when none was given and there are enough queries."""
        if self.val_dataset is not None:
            return self.dataset, self.val_dataset
        groups = group_by_query(self.dataset)
        n_val = int(len(groups) * self.validation_fraction)
        if n_val < 10:
            return self.dataset, []
        rng = random.Random(self.seed)
        held = set(rng.sample([q for q, _ in groups], n_val))
        logger.info("No val_dataset: holding out %d of %d training queries to check the reranker against the first stage.",
                    n_val, len(groups))
        return ([s for s in self.dataset if s.query not in held], [s for s in self.dataset if s.query in held])

    def _build_trainer(self, model: Any, table: Any, loss: Any, evaluator: Any, result: FinetuneResult,
                       resume: Optional[str], train_kwargs: Dict[str, Any]) -> Tuple[Any, Any]:
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

        world = int(os.environ.get("WORLD_SIZE", "1"))
        batch = max(1, min(self.batch_size, len(table)))
        if len(table) < self.batch_size:
            logger.warning("Only %d training rows, fewer than batch_size=%d: training with batches of %d.",
                           len(table), self.batch_size, batch)
        total_steps = max(1, math.ceil(math.ceil(len(table) / (batch * world)) * self.epochs))
        precision = core.precision_flags(self.precision, core.uses_cpu(self.device))
        result.hyperparameters["precision"] = core.precision_label(self.precision, *precision)
        result.hyperparameters["head_learning_rate"] = self.options.head_lr(self.new_head)
        keep = self.save_checkpoints is not False
        args = CrossEncoderTrainingArguments(**{
            **core.schedule_arguments(
                output_dir=self.checkpoint_path, epochs=self.epochs, batch_size=batch, total_steps=total_steps,
                learning_rate=self.learning_rate, warmup_ratio=self.warmup_ratio,
                lr_scheduler_type=self.lr_scheduler_type, weight_decay=self.weight_decay, seed=self.seed,
                precision=precision, device=self.device, logging_steps=self.logging_steps,
                show_progress_bar=self.show_progress_bar, save_steps=self.checkpoint_save_steps,
                keep_checkpoints=keep, checkpoint_total_limit=self.checkpoint_save_total_limit,
                eval_steps=self.evaluation_steps if evaluator is not None else None,
            ),
            **train_kwargs,
        })
        callbacks, keep_best = core.training_callbacks(
            self.checkpoint_path, resume, self.checkpoint_save_seconds if keep else None,
            "eval_val_ndcg@10" if evaluator is not None else None,
            paced=keep and self.checkpoint_save_steps is None,
        )
        trainer = _trainer_class()(model=model, args=args, train_dataset=table, loss=loss, evaluator=evaluator,
                                   callbacks=callbacks)
        trainer.head_learning_rate = self.options.head_lr(self.new_head)
        attach_trainer_output(trainer, self.show_progress_bar)
        return trainer, keep_best

    def _choose_blend(self, model: Any, val: Sequence[CrossEncoderFinetuningDatasetSample]) -> Dict[str, Any]:
        """Score the validation candidates and pick the blend weight with the first stage (0 unless better)."""
        import numpy as np
        import torch

        groups = []
        for _, g in group_by_query(val):
            if not any(s.score > 0.5 for s in g):
                continue
            first = [s.first_stage_score if s.first_stage_score is not None else -float(i) for i, s in enumerate(g)]
            ce = model.predict([(s.query, s.context) for s in g], batch_size=32, show_progress_bar=False,
                               activation_fn=torch.nn.Identity(), convert_to_numpy=True)
            groups.append((first, np.asarray(ce, dtype=np.float64).reshape(-1), [s.score for s in g]))
        choice = choose_blend_weight(groups, self.blend_weights)
        table = choice.table
        first_only, ce_only, chosen = table[0.0], table.get(1.0, table[max(table)]), table[choice.weight]
        if choice.best_weight == 0.0:
            saturated = first_only >= SATURATED_NDCG
            logger.warning("The fine-tuned reranker does not beat the first stage on %d validation queries "
                           "(nDCG@10 %.4f alone vs %.4f first stage): the pipeline keeps the first stage's order "
                           "(blend weight 0).%s", len(groups), ce_only, first_only,
                           " The first stage ranks these queries almost perfectly, as it does questions it was trained on, "
                           "so they cannot show a gain: validate on questions the embedding model has not seen "
                           "(val_dataset=candidates_from_qa_dataset(...)), or set a weight chosen on such questions with "
                           "get_finetuned_model(blend_weight=...)." if saturated else "")
        elif choice.weight == 0.0:
            logger.warning("Blend guard: %s. The pipeline keeps the first stage's order (blend weight 0); more "
                           "validation questions can show a smaller gain.", choice.rule)
        else:
            logger.info("Blend guard: %s. Validation nDCG@10: first stage %.4f, reranker alone %.4f, blend %.4f.",
                        choice.rule, first_only, ce_only, chosen)
        return {"blend_weight": choice.weight, "validation_queries": len(groups), "weights": table,
                "first_stage": {"ndcg@10": first_only}, "reranker": {"ndcg@10": ce_only}, "blended": {"ndcg@10": chosen},
                "decision": choice.as_dict()}

    def _save(self, model: Any, result: FinetuneResult) -> None:
        Path(self.model_output_path).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(self.model_output_path)
        config = {"blend_weight": self.blend.get("blend_weight", 1.0), "max_length": self.max_length,
                  "base_model": self.model_id, "started_from_bi_encoder": self.new_head,
                  "validation": {k: v for k, v in self.blend.items() if k != "blend_weight"}}
        Path(self.model_output_path, CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
        Path(self.model_output_path, "README.md").write_text(self._model_card(result), encoding="utf-8")

    def _model_card(self, result: FinetuneResult) -> str:
        rows = card_fields({"training samples": result.pairs, "negatives": result.pairs_with_negatives, "steps": result.steps,
                            "train seconds": result.train_seconds, "final loss": result.final_loss,
                            **result.hyperparameters})
        weight = self.blend.get("blend_weight", 1.0)
        lines = ["---", "library_name: sentence-transformers", "pipeline_tag: text-ranking",
                 "tags: [sentence-transformers, cross-encoder, reranker, llama-index, fine-tuned]", "---", "",
                 "# Fine-tuned reranker", "", f"Fine-tuned from `{_safe(self.model_id)}` with llama-index-bge-finetune.", ""]
        if self.new_head:
            lines += ["Started from a bi-encoder's weights with a new, untrained ranking head (no cross-encoder was available).", ""]
        lines += ["## Usage", "", "```python", "from llama_index_bge_finetune.reranking import FinetunedRerank", "",
                  "rerank = FinetunedRerank(model=\"path/to/this/folder\", top_n=5)  # applies the saved blend weight",
                  "query_engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[rerank])", "```", "",
                  f"Blend weight with the first stage's scores: **{weight}** (0 = first stage order, 1 = reranker alone).", "",
                  *([f"Chosen on validation queries: {_safe(self.blend['decision']['rule'])}.", ""] if "decision" in self.blend else []),
                  "## Training", "", "| | |", "|---|---|", *[f"| {_safe(k)} | {_safe(v)} |" for k, v in rows.items()], "",
                  "## Validation (nDCG@10 over the first stage's candidates)", ""]
        if "weights" in self.blend:
            lines += ["| blend weight | nDCG@10 |", "|---|---|",
                      *[f"| {w} | {v:.4f} |" for w, v in self.blend["weights"].items()]]
        else:
            lines.append("No validation queries: pass `val_dataset` to fill this table.")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ hub and inference
    def push_to_hub(self, repo_id: Any = None) -> None:
        """Upload the saved reranker folder (weights, tokenizer, card, blend config) to the Hugging Face Hub."""
        if not repo_id:
            raise ValueError("No value provided for repo_id; pass e.g. 'my-user/my-reranker'.")
        self._require_saved()
        from huggingface_hub import HfApi

        try:
            api = HfApi()
            api.create_repo(repo_id, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=self.model_output_path, ignore_patterns=[f"{core.CHECKPOINT_DIR}/*"])
        except Exception as exc:  # hub errors: missing login, no network
            raise ValueError(
                f"Uploading to {repo_id} failed ({type(exc).__name__}: {exc}). Log in first with "
                "`huggingface-cli login` or huggingface_hub.login(); see "
                "https://huggingface.co/docs/transformers/model_sharing#share-a-model"
            ) from exc

    def get_finetuned_model(self, model_name: Optional[str] = None, top_n: int = 3, **kwargs: Any) -> Any:
        """The reranker as a LlamaIndex node postprocessor (a ``SentenceTransformerRerank``).

        ``model_name``: a folder or hub id (default: this engine's ``model_output_path``). ``kwargs``
        go to :class:`~llama_index_bge_finetune.reranking.FinetunedRerank` (``blend_weight``, ``device``, ...).
        """
        from llama_index_bge_finetune.reranking.postprocessor import FinetunedRerank

        if model_name is None:
            self._require_saved()
        return FinetunedRerank(model=model_name or self.model_output_path, top_n=top_n, **kwargs)

    def _require_saved(self) -> None:
        if not os.path.isfile(os.path.join(self.model_output_path, "config.json")):
            raise TrainingError(f"No fine-tuned reranker in {self.model_output_path}: call finetune() first.")


def load_cross_encoder(model_id: str, max_length: int, device: Optional[str] = None,
                       trust_remote_code: bool = False) -> Tuple[Any, bool]:
    """A 1-label ``CrossEncoder`` from a cross-encoder or a bi-encoder; True when its head is new (bi-encoder start)."""
    from sentence_transformers.cross_encoder import CrossEncoder

    path = Path(model_id)
    bi_encoder = path.is_dir() and (path / "modules.json").is_file() and not _has_classifier(path)
    if bi_encoder:
        from sentence_transformers.base.modules import Transformer

        source = path / _transformer_subfolder(path)
        if model_id not in _warned_bi_encoder:
            _warned_bi_encoder.add(model_id)
            logger.warning(
                "Starting the reranker from the bi-encoder %s: its encoder weights with a new, untrained ranking head. "
                "With Hugging Face Hub access, start from a cross-encoder instead, e.g. "
                "model_id='%s'.", model_id, DEFAULT_RERANKER_BASE)
        encoder = Transformer(str(source), transformer_task="sequence-classification", max_seq_length=max_length,
                              config_kwargs={"num_labels": 1, "trust_remote_code": trust_remote_code},
                              model_kwargs={"trust_remote_code": trust_remote_code},
                              processor_kwargs={"model_max_length": max_length, "trust_remote_code": trust_remote_code})
        model = CrossEncoder(modules=[encoder], device=device, trust_remote_code=trust_remote_code)
        return _clamp_length(model, max_length), True
    model = CrossEncoder(model_id, num_labels=1, max_length=max_length, device=device, trust_remote_code=trust_remote_code)
    return _clamp_length(model, max_length), False


def _clamp_length(model: Any, max_length: int) -> Any:
    """Set the pair length limit, at most the model's position embeddings (a longer pair would crash)."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None) or max_length
    if max_length > limit:
        logger.warning("max_length=%d exceeds the model's %d positions: using %d.", max_length, limit, limit)
    model.max_seq_length = min(max_length, limit)
    return model


def _training_samples(dataset: Any) -> List[CrossEncoderFinetuningDatasetSample]:
    """The training samples, refused when empty or without both relevant and irrelevant ones."""
    samples = coerce_samples(dataset, "training dataset")
    if not samples:
        raise DatasetError("The cross-encoder training dataset is empty; build samples with samples_from_qa_dataset() "
                           "or generate_ce_fine_tuning_dataset().")
    if not any(s.score > 0.5 for s in samples) or not any(s.score <= 0.5 for s in samples):
        raise DatasetError("The cross-encoder training dataset needs both relevant (score 1) and irrelevant (score 0) "
                           "samples; mine negatives with samples_from_qa_dataset().")
    return samples


def _has_classifier(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _transformer_subfolder(path: Path) -> str:
    """The folder of a sentence-transformers model's Transformer module ("" for the model root)."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return ""
    for m in modules:
        if str(m.get("type", "")).endswith("Transformer"):
            return m.get("path", "") or ""
    return ""


def _to_table(rows: Dict[str, List[Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(rows)


def _reranking_evaluator(val: Sequence[CrossEncoderFinetuningDatasetSample]) -> Any:
    """sentence-transformers' reranking evaluator over the validation candidates, in first-stage order."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    samples = [{"query": q, "positive": [s.context for s in g if s.score > 0.5], "documents": [s.context for s in g]}
               for q, g in group_by_query(val)]
    samples = [s for s in samples if s["positive"] and len(s["documents"]) > 1]  # nDCG needs two candidates
    if not samples:
        return None
    return CrossEncoderRerankingEvaluator(samples, at_k=10, always_rerank_positives=False, name="val",
                                          batch_size=32, show_progress_bar=False, write_csv=False)


_TRAINER: Any = None


def _trainer_class() -> Any:
    """``CrossEncoderTrainer`` with a separate learning rate for the classification head."""
    global _TRAINER
    if _TRAINER is not None:
        return _TRAINER
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    class HeadLRCrossEncoderTrainer(CrossEncoderTrainer):
        head_learning_rate: Optional[float] = None

        def create_optimizer(self, model: Any = None) -> Any:
            base_lr = self.args.learning_rate
            if self.optimizer is None and self.head_learning_rate and self.head_learning_rate != base_lr:
                opt_model = self.model if model is None else model
                decay = set(self.get_decay_parameter_names(opt_model))
                groups: Dict[Tuple[bool, bool], List[Any]] = {}
                for n, p in opt_model.named_parameters():
                    if p.requires_grad:
                        groups.setdefault(("classifier" in n or "pooler" in n, n in decay), []).append(p)
                self.optimizer = torch.optim.AdamW(
                    [{"params": ps, "lr": self.head_learning_rate if head else base_lr,
                      "weight_decay": self.args.weight_decay if dec else 0.0} for (head, dec), ps in groups.items()],
                    lr=base_lr, betas=(self.args.adam_beta1, self.args.adam_beta2), eps=self.args.adam_epsilon,
                )
            return super().create_optimizer(model) if model is not None else super().create_optimizer()

    _TRAINER = HeadLRCrossEncoderTrainer
    return _TRAINER
