"""The fine-tuning engine: a drop-in replacement for llama-index-finetuning's, on the modern trainer.

Example::

    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    train = EmbeddingQAFinetuneDataset.from_json("train_dataset.json")
    engine = SentenceTransformersFinetuneEngine(
        train, model_id="BAAI/bge-small-en-v1.5", model_output_path="exp_finetune"
    )
    engine.finetune()
    embed_model = engine.get_finetuned_model()  # a HuggingFaceEmbedding with the query instruction
    print(engine.result.train_seconds, engine.result.final_loss)
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Union

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.errors import DatasetError, TrainingError
from llama_index_bge_finetune.models import DEFAULT_BASE_MODEL
from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached
from llama_index_bge_finetune.training import core
from llama_index_bge_finetune.training.examples import TrainingTable, query_positive_pairs, training_table
from llama_index_bge_finetune.training.forgetting import ForgettingGuard
from llama_index_bge_finetune.training.freezing import freeze_lower_layers, layer_count
from llama_index_bge_finetune.training.hard_negatives import HardNegativeMiner
from llama_index_bge_finetune.training.losses import build_loss
from llama_index_bge_finetune.training.options import FROM_MODEL, TrainingOptions, given_loss_model, option_attributes
from llama_index_bge_finetune.training.model_card import card_fields, write_model_card
from llama_index_bge_finetune.training.result import FinetuneResult
from llama_index_bge_finetune.training.schedule import (MINING_MIN_PAIRS, count_steps, layers_to_freeze, mined_negatives,
                                                       peak_learning_rate, training_schedule)
from llama_index_bge_finetune.training.trainer_output import ProgressCallback, attach_trainer_output, without_model_card_data
from llama_index_bge_finetune.training.window import WindowChoice, choose_window, confirmed_by_validation, read_at
from llama_index_bge_finetune.window_settings import WindowSetting

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
MINING_POOL_PER_PAIR = 8  # hard_negative_pool="auto": passages ranked per training pair ...
MIN_MINING_POOL = 1024  # ... and at least this many


@option_attributes(TrainingOptions)
class SentenceTransformersFinetuneEngine:
    """Fine-tunes a sentence-transformers model on an ``EmbeddingQAFinetuneDataset``.

    The first sixteen arguments are those of llama-index-finetuning 0.4.2's engine, with the same
    meaning, so replacing the import is enough. What is better: batches never hold the same
    passage twice; hard negatives mined with the base model (with a false-negative guard); the
    base model's query instruction used in training, evaluation and inference (saved with the
    model); small datasets still train; no crash without a validation set; checkpoints under the
    output folder with resume after a kill; data-parallel under ``torchrun``; a model card.

    Every argument but the datasets is checked when the engine is built and kept in :attr:`options`
    (:class:`~llama_index_bge_finetune.training.options.TrainingOptions`), and each is also an
    attribute under its own name: ``engine.batch_size`` reads ``engine.options.batch_size``.

    Args:
        dataset: training data: our ``EmbeddingQAFinetuneDataset``, llama-index-finetuning's, a dict, or a JSON path.
        model_id: base model (hub id or folder).
        model_output_path: folder that receives the fine-tuned model (and ``checkpoints/``).
        batch_size: examples per batch (per device); every other passage in the batch is a negative.
        val_dataset: optional validation data: evaluated before training and every ``evaluation_steps``
            (at least twice per run), and the best weights are kept.
        loss: ``None`` (in-batch negatives), a name from ``LOSS_NAMES`` or a ready loss module.
        epochs: passes over the data (fractions allowed); ``None`` (default): 1.5, or 2 to 4 whole
            passes when 1.5 would be fewer than 20 optimizer steps, as on a few hundred pairs
            (:mod:`~llama_index_bge_finetune.training.schedule`). With one hard negative per
            pair each example carries a second, short passage, yet on CPU the defaults train in about
            the peer's time (see ``hard_negative_max_tokens``, ``attention_dropout`` and ``precision``;
            benchmarks/RESULTS.md).
        show_progress_bar: show progress bars (mining's encode, the trainer's); without them the
            trainer's log lines go to this package's logger at DEBUG instead of stdout.
        evaluation_steps: evaluate every this many steps (only with ``val_dataset``).
        use_all_docs: one pair per relevant passage instead of the first only.
        trust_remote_code: passed to ``SentenceTransformer``.
        device: e.g. ``"cpu"`` or ``"cuda"``; ``None`` picks the accelerator.
        save_checkpoints: ``None`` (default) checkpoints for resume and deletes them after success;
            ``True`` keeps them; ``False`` saves none.
        resume_from_checkpoint: ``True`` continues from the last checkpoint in
            ``<model_output_path>/checkpoints`` (fresh start if none), or a checkpoint folder path.
        checkpoint_save_steps: steps between checkpoints; ``None`` (default) = every 10% of the run, but
            not within a minute of the previous one and not at the last step (the model is saved then).
        checkpoint_save_total_limit: checkpoints kept (0 = all).
        checkpoint_save_seconds: also checkpoint whenever this many seconds passed since the last
            checkpoint (``None`` turns it off), so a kill never loses more than a few minutes.
        query_instruction: prepended to queries (never passages) in training, evaluation and
            inference; defaults to the base model's own (the BGE instruction for BGE v1/v1.5).
        learning_rate: the peak learning rate. ``"auto"`` (default): 1.5e-4 from 200 training pairs on,
            5e-5 below (SciFact's 809 claims in 1.5 epochs: nDCG@10 0.7520 at 1.5e-4 against 0.7316 at
            1e-4; see :mod:`llama_index_bge_finetune.training.schedule`).
        warmup_ratio, lr_scheduler_type, weight_decay, seed, gradient_accumulation_steps: the optimiser schedule.
        precision: ``"auto"`` (bf16 or fp16 on GPU; bf16 autocast on a CPU that computes bfloat16
            natively (AVX512-BF16 or AMX), else fp32), ``"fp32"``, ``"fp16"`` (GPU only), ``"bf16"``.
        attention_dropout: dropout on attention probabilities while training; ``None`` keeps the
            model's own (0.1 for BERT models). Default 0: with it on, attention cannot use PyTorch's
            fused kernels and a CPU step took 2-3x longer, for no measured quality gain (see
            benchmarks/RESULTS.md). Hidden-state dropout is unchanged.
        frozen_layers: keep the token embeddings and this many bottom transformer layers fixed while
            training (0: everything trains). ``"auto"`` (default): below 200 training pairs two thirds
            of the layers, rounded down (4 of all-MiniLM-L6-v2's 6, 8 of BGE-small's 12), from 200 on
            none. On 40 and 150 SciFact claims training only the top third gained more than training
            every layer (nDCG@10 +0.009 vs -0.005, +0.038 vs +0.030) in half the time; on 809 claims
            2 fixed layers cost 0.030 (``training/schedule.py``, benchmarks/RESULTS.md).
        hard_negatives: hard negatives per pair (0 turns mining off); ``"auto"`` (default): 1 from 200
            training pairs on, none below (in-batch negatives only), where mined ones measured worse.
        hard_negative_skip_top, hard_negative_max_rank, hard_negative_margin: the miner's
            false-negative guard (see :class:`HardNegativeMiner`).
        hard_negative_max_tokens: hard negatives are mined and trained on their first this many
            tokens (``None``: the model's limit). A passage's opening says what it is about, and it
            costs a fraction of the whole passage, in mining (one encode of the corpus) and in every
            training step. Default 64: on SciFact (AVX2 CPU) nDCG@10 0.7292 in the peer's training
            time, against 0.7335 in 1.1-1.2x its time at 128 (see benchmarks/RESULTS.md).
        hard_negative_pool: how many passages mining ranks: ``"auto"`` (default) = the whole corpus
            up to 8 passages per training pair (at least 1,024), else every positive plus a seeded
            sample; an int sets the cap; ``None`` always ranks the whole corpus. Mining's cost is one
            encode of what it ranks, which for a few hundred pairs over a large corpus can cost as
            much as training.
        hard_negative_gradients: back-propagate through the hard-negative passages (default).
            ``False`` embeds them without gradients: a SciFact step cost 12.7 s instead of 15.3 s
            on an AVX2 CPU, but nDCG@10 fell from 0.7335 to 0.7100 (benchmarks/RESULTS.md).
            Applies to the default loss.
        temperature: softmax temperature of the contrastive loss.
        mini_batch_size: chunk size of the cached losses (``loss="cached_mnrl"``).
        matryoshka_dims: also train these truncated dimensions, e.g. ``[384, 256, 128]``.
        guide_model_id: guide of the GIST losses (default: the base model).
        train_max_seq_length: truncate texts to this many tokens while training only; ``None`` trains
            at the base's window.
        max_seq_length: the window the saved model reads. ``"auto"`` (default): long enough for 90%
            of the training passages (rounded up to 64 tokens), between the base's window and the
            model's position limit, so chunks longer than the base's window (all-MiniLM-L6-v2: 256
            tokens; LlamaIndex chunks: up to 1,024) are embedded whole, not by their opening. On the
            10-K experiment hit@5 0.8367 against 0.7709 at the base's window (see
            :mod:`llama_index_bge_finetune.training.window`). ``None`` keeps the base's; an int sets it.
        forgetting_dataset: a general dataset; with it, the forgetting guard runs.
        forgetting_threshold: largest acceptable nDCG@10 drop on it before interpolating.
        forgetting_alpha: weight of the fine-tuned model in the interpolation.
        cache_dir: where corpus embeddings for mining are kept (default: under the checkpoints).
        logging_steps: steps between loss log lines.
        encode_backend: where mining and the base model's validation encode the corpus: ``"local"``
            (default) or ``"ray"`` (Ray Data actors, see :mod:`llama_index_bge_finetune.encoding`).
        on_progress: called with ``(steps done, total steps)`` when training starts and after every
            optimizer step (on the main process), e.g. to drive a progress bar of your own.
    """

    def __init__(
        self,
        dataset: Any,
        model_id: str = DEFAULT_BASE_MODEL,
        model_output_path: PathLike = "exp_finetune",
        batch_size: int = 32,
        val_dataset: Optional[Any] = None,
        loss: Optional[Any] = None,
        epochs: Optional[float] = None,
        show_progress_bar: bool = True,
        evaluation_steps: int = 50,
        use_all_docs: bool = False,
        trust_remote_code: bool = False,
        device: Optional[Any] = None,
        save_checkpoints: Optional[bool] = None,
        resume_from_checkpoint: Union[bool, PathLike] = False,
        checkpoint_save_steps: Optional[int] = None,
        checkpoint_save_total_limit: int = 0,
        *,
        checkpoint_save_seconds: Optional[float] = 300.0,
        query_instruction: Any = FROM_MODEL,
        learning_rate: Union[float, str] = "auto",
        warmup_ratio: float = 0.1,
        lr_scheduler_type: str = "linear",
        weight_decay: float = 0.01,
        seed: int = 42,
        gradient_accumulation_steps: int = 1,
        precision: str = "auto",
        attention_dropout: Optional[float] = 0.0,
        frozen_layers: Union[int, str] = "auto",
        hard_negatives: Union[int, str] = "auto",
        hard_negative_skip_top: int = 3,
        hard_negative_max_tokens: Optional[int] = 64,
        hard_negative_max_rank: int = 50,
        hard_negative_margin: float = 0.05,
        hard_negative_pool: Union[int, str, None] = "auto",
        hard_negative_gradients: bool = True,
        temperature: float = 0.05,
        mini_batch_size: int = 32,
        matryoshka_dims: Optional[Sequence[int]] = None,
        guide_model_id: Optional[str] = None,
        train_max_seq_length: Optional[int] = None,
        max_seq_length: WindowSetting = "auto",
        forgetting_dataset: Optional[Any] = None,
        forgetting_threshold: float = 0.02,
        forgetting_alpha: float = 0.5,
        cache_dir: Optional[PathLike] = None,
        logging_steps: int = 10,
        encode_backend: EncodeBackendSpec = "local",
        on_progress: Optional[ProgressCallback] = None,
    ) -> None:
        self.options = TrainingOptions.from_arguments(locals())  # checked and resolved; see training/options.py
        self.dataset = EmbeddingQAFinetuneDataset.coerce(dataset).validate_or_raise("training dataset")
        self.val_dataset = (
            EmbeddingQAFinetuneDataset.coerce(val_dataset).validate_or_raise("validation dataset")
            if val_dataset is not None else None
        )
        self.miner: Optional[HardNegativeMiner] = self.options.hard_negative_miner()
        self.forgetting_guard = (
            ForgettingGuard(forgetting_dataset, forgetting_threshold, forgetting_alpha)
            if forgetting_dataset is not None else None
        )
        self.result: Optional[FinetuneResult] = None
        self._model = given_loss_model(loss)

    @property
    def checkpoint_path(self) -> str:
        """Where checkpoints go: ``<model_output_path>/checkpoints``."""
        return self.options.checkpoint_path

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> "SentenceTransformer":  # noqa: F821
        """The model being fine-tuned (loaded on first use)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_id, trust_remote_code=self.trust_remote_code, device=self.device)
        return self._model

    def hyperparameters(self) -> Dict[str, Any]:
        """Every setting that shapes the result, for reports and the model card."""
        params: Dict[str, Any] = {
            "base_model": self.model_id,
            "loss": self.options.loss_name,
            "temperature": self.temperature,
            "batch_size": self.batch_size,
            "epochs": self.epochs or "auto",
            "learning_rate": self.learning_rate,
            "warmup_ratio": self.warmup_ratio,
            "lr_scheduler_type": self.lr_scheduler_type,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "precision": self.precision,
            "attention_dropout": "model default" if self.attention_dropout is None else self.attention_dropout,
            "frozen_layers": self.frozen_layers,
            "use_all_docs": self.use_all_docs,
            "batch_sampler": "distinct_passages",
            "query_instruction": self.query_instruction,
            "hard_negatives": ("auto" if self.hard_negatives == "auto" else self.miner.get_config_dict()) if self.miner else 0,
            "hard_negative_pool": self.hard_negative_pool,
            "hard_negative_gradients": self.hard_negative_gradients,
            "train_max_seq_length": self.train_max_seq_length,
            "max_seq_length": self.max_seq_length,
        }
        if self.options.loss_name.startswith("cached"):
            params["mini_batch_size"] = self.mini_batch_size
        if self.matryoshka_dims:
            params["matryoshka_dims"] = self.matryoshka_dims
        return params

    # ------------------------------------------------------------------ training
    def finetune(self, **train_kwargs: Any) -> None:
        """Train and save the model to ``model_output_path``; the outcome is in :attr:`result`.

        The steps: pairs and hard negatives (one table, so every batch is full), the base model's
        validation score, the trainer with checkpoints every 10% of the run and every few minutes,
        training (resumed from the last checkpoint when asked), the best validated weights kept,
        then the model, its card and ``training_result.json`` saved. ``train_kwargs`` override
        fields of ``SentenceTransformerTrainingArguments``.
        """
        started = time.perf_counter()
        model = self.model
        base_seq_len = model.max_seq_length
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank0 = int(os.environ.get("RANK", "0")) == 0
        result = FinetuneResult(model_path=self.model_output_path, hyperparameters=self.hyperparameters())
        window = choose_window(model, list(self.dataset.corpus.values()), self.max_seq_length)
        result.window = window.to_dict()
        result.hyperparameters["max_seq_length"] = window.chosen

        rows = self._training_table(model, result, show_progress_bar=self.show_progress_bar and rank0)
        evaluator = self._build_evaluator(window.chosen)
        base_at_base_window = None
        if evaluator is not None:
            result.evaluation["base"] = self._base_scores(model, evaluator)
            if self.max_seq_length == "auto" and window.chosen != base_seq_len:  # checked on it after training
                base_at_base_window = self._base_scores(model, evaluator.at(base_seq_len))
        base_state = forgetting_before = None
        if self.forgetting_guard is not None:
            base_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            forgetting_before = self.forgetting_guard.measure(model, self.query_instruction)
        if self.train_max_seq_length:
            model.max_seq_length = self.train_max_seq_length
        loss = self._build_loss(model, gather=world > 1)

        resume = core.resolve_resume(self.resume_from_checkpoint, self.checkpoint_path)
        if resume:
            result.resumed_from_step = core.checkpoint_step(resume)
            logger.info("Resuming from %s (step %d).", resume, result.resumed_from_step)
        try:
            frozen = freeze_lower_layers(model, self._layers_to_freeze(model, result.pairs))
        except ValueError as exc:
            raise TrainingError(str(exc)) from exc
        result.hyperparameters["frozen_layers"] = frozen.layers
        try:
            trainer, keep_best = self._build_trainer(model, rows, loss, evaluator, result, world, resume, train_kwargs)
            output = core.run_trainer(trainer, resume, self.attention_dropout)
        finally:
            frozen.release()
        model.max_seq_length = base_seq_len
        core.record_training(result, output, trainer)
        if not result.steps:
            raise TrainingError(
                f"Training ran 0 steps over {len(rows.table)} rows, so the model was not changed and is not saved. "
                "This is a bug in llama-index-bge-finetune: please report it with the dataset's size and the "
                "engine's settings (training_result.json is not written)."
            )

        if keep_best is not None:
            keep_best.restore(model, result.steps)
            result.evaluation["fine_tuned"] = _ir_scores(_strip_eval_prefix(keep_best.best_metrics))
        if self.forgetting_guard is not None:
            result.forgetting = self.forgetting_guard.check(model, base_state, forgetting_before, self.query_instruction)
            if result.forgetting["interpolated_applied"] and evaluator is not None:
                result.evaluation["interpolated"] = _ir_scores(evaluator(model))

        if base_at_base_window is not None and "fine_tuned" in result.evaluation and "interpolated" not in result.evaluation:
            window = self._confirm_window(model, evaluator, window, result, base_at_base_window)
        if window.chosen != base_seq_len or base_at_base_window is not None:
            logger.info("Window: %s.", window.reason)
        model.max_seq_length = window.chosen
        core.finish(trainer, result, started, self.model_output_path, self.checkpoint_path, self.save_checkpoints,
                    self._save)
        self.result = result
        logger.info(
            "Fine-tuned %s in %.1f s (%d steps, %.1f examples/s, final loss %s) -> %s",
            self.model_id, result.train_seconds, result.steps, result.examples_per_second,
            f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a", self.model_output_path,
        )

    def _layers_to_freeze(self, model: Any, pairs: int) -> int:
        """The bottom layers to keep fixed: ``frozen_layers``, or for ``"auto"`` two thirds of them on small data."""
        depth = layer_count(model)
        count = layers_to_freeze(self.frozen_layers, pairs, depth)
        if self.frozen_layers == "auto" and count:
            logger.info("%d training pairs, fewer than %d: the embeddings and the bottom %d of %d layers stay fixed, "
                        "the top %d train (small data measured better so); pass frozen_layers=0 to train every layer.",
                        pairs, MINING_MIN_PAIRS, count, depth, depth - count)
        return count

    def _training_table(self, model: Any, result: FinetuneResult, show_progress_bar: bool) -> TrainingTable:
        """(anchor, positive[, negative]) rows, every pair with the same number of negatives, and their batch keys."""
        pairs = query_positive_pairs(self.dataset, self.use_all_docs)
        if len(pairs) < 2:
            raise DatasetError(
                f"The training dataset has {len(pairs)} question/passage pair; contrastive training needs at least 2. "
                "Generate more questions or merge datasets."
            )
        negatives: Optional[List[List[str]]] = None
        mine = self.miner is not None and mined_negatives(self.hard_negatives, len(pairs)) > 0
        result.hyperparameters["hard_negatives"] = self.miner.get_config_dict() if mine else 0
        if self.hard_negatives == "auto" and not mine:
            logger.info("%d training pairs, fewer than %d: in-batch negatives only, no mined hard negatives "
                        "(they measured worse on small data); pass hard_negatives=1 to mine.", len(pairs),
                        MINING_MIN_PAIRS)
        if mine:
            t0 = time.perf_counter()
            self.miner.cache_dir = self.options.mining_cache_dir
            self.miner.max_pool = mining_pool_size(len(pairs)) if self.hard_negative_pool == "auto" else self.hard_negative_pool
            negatives = self.miner.mine(
                model, self.dataset.queries, self.dataset.corpus, self.dataset.relevant_docs, pairs,
                query_prompt=self.query_instruction, show_progress_bar=show_progress_bar,
            )
            result.mining_seconds = time.perf_counter() - t0
        table = training_table(
            self.dataset, pairs, negatives, seed=self.seed,
            negative_max_tokens=self.hard_negative_max_tokens, tokenizer=model.tokenizer,
        )
        result.pairs = len(pairs)
        result.pairs_with_negatives = table.mined
        if len(pairs) < self.batch_size:
            logger.warning(
                "Only %d training pairs, fewer than batch_size=%d: training with batches of %d "
                "(fewer in-batch negatives). Generate more questions for a stronger model.",
                len(pairs), self.batch_size, len(pairs),
            )
        return table

    @staticmethod
    def _confirm_window(model: Any, evaluator: Any, window: WindowChoice, result: FinetuneResult,
                        base_at_base_window: Dict[str, float]) -> WindowChoice:
        """The saved window, checked on the validation set: the base's when the fine-tuned model scores higher there."""
        at_base = _ir_scores(evaluator.at(window.base)(model))
        confirmed = confirmed_by_validation(window, result.evaluation["fine_tuned"]["ndcg@10"], at_base["ndcg@10"])
        if confirmed is not window:
            result.evaluation.update(base=base_at_base_window, fine_tuned=at_base)
            result.window = confirmed.to_dict()
            result.hyperparameters["max_seq_length"] = confirmed.chosen
        return confirmed

    def _base_scores(self, model: Any, evaluator: Any) -> Dict[str, float]:
        """The base model's validation scores at the saved window, with the corpus vectors kept in the embedding cache.

        A resumed run does not encode the validation corpus again, and when mining ran at full
        length (``hard_negative_max_tokens=None``) and the saved window is the base's, a validation
        set over the training corpus reads the mining vectors and costs no encode at all.
        """
        import torch

        with read_at(model, evaluator.window):
            vectors = encode_cached(model, evaluator.corpus, self.options.mining_cache_dir, batch_size=64,
                                    encode_backend=self.encode_backend)
        return _ir_scores(evaluator(model, corpus_embeddings=torch.tensor(vectors)))  # a copy of the read-only map

    def _build_trainer(self, model: Any, rows: TrainingTable, loss: Any, evaluator: Any, result: FinetuneResult,
                       world: int, resume: Optional[str], train_kwargs: Dict[str, Any]) -> Any:
        """The sentence-transformers trainer with this engine's schedule, precision and checkpoints."""
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

        from llama_index_bge_finetune.training.sampler import DistinctPassageBatchSampler, even_batches

        table = rows.table
        batches, batch = even_batches(len(table), self.batch_size)
        if batch != self.batch_size and len(table) > self.batch_size:
            logger.info("%d batches of up to %d rows instead of %d, so that all %d rows train in every epoch.",
                        batches, batch, self.batch_size, len(table))
        # The sampler deals every epoch into exactly this many batches with no passage twice, so the
        # schedule's step count is the number of steps that run.
        schedule = training_schedule(len(table), self.batch_size, self.epochs, world, self.gradient_accumulation_steps)
        if schedule.adapted:
            logger.info("%d training rows are %d steps a pass: training %s epochs (%d steps) so that small data gets "
                        "enough optimizer steps; pass epochs to choose.", len(table),
                        count_steps(len(table), self.batch_size, 1, world, self.gradient_accumulation_steps),
                        schedule.epochs, schedule.steps)
        peak = peak_learning_rate(self.learning_rate, result.pairs)
        result.hyperparameters.update(batch_size=batch, epochs=schedule.epochs, learning_rate=peak)
        total_steps = schedule.steps
        precision = core.precision_flags(self.precision, core.uses_cpu(self.device))
        result.hyperparameters["precision"] = core.precision_label(self.precision, *precision)
        keep = self.save_checkpoints is not False
        args = SentenceTransformerTrainingArguments(**{
            **core.schedule_arguments(
                output_dir=self.checkpoint_path, epochs=schedule.epochs, batch_size=batch, total_steps=total_steps,
                learning_rate=peak, warmup_ratio=self.warmup_ratio,
                lr_scheduler_type=self.lr_scheduler_type, weight_decay=self.weight_decay, seed=self.seed,
                precision=precision, device=self.device, logging_steps=self.logging_steps,
                show_progress_bar=self.show_progress_bar, save_steps=self.checkpoint_save_steps,
                keep_checkpoints=keep, checkpoint_total_limit=self.checkpoint_save_total_limit,
                eval_steps=self.evaluation_steps if evaluator is not None else None,
            ),
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "batch_sampler": DistinctPassageBatchSampler.with_keys(rows.keys),
            "prompts": {"anchor": self.query_instruction} if self.query_instruction else None,
            **train_kwargs,
        })
        callbacks, keep_best = core.training_callbacks(
            self.checkpoint_path, resume, self.checkpoint_save_seconds if keep else None,
            "eval_val_cosine_ndcg@10" if evaluator is not None else None,
            paced=keep and self.checkpoint_save_steps is None,
        )
        trainer = without_model_card_data(SentenceTransformerTrainer)(
            model=model, args=args, train_dataset=table, loss=loss, evaluator=evaluator, callbacks=callbacks,
        )
        attach_trainer_output(trainer, self.show_progress_bar, self.on_progress)
        return trainer, keep_best

    def _build_loss(self, model: Any, gather: bool) -> Any:
        if self.loss is not None and not isinstance(self.loss, str):
            return self.loss
        name = self.loss or "mnrl"
        guide = None
        if name in ("gist", "cached_gist"):
            from sentence_transformers import SentenceTransformer

            guide = SentenceTransformer(self.guide_model_id or self.model_id, trust_remote_code=self.trust_remote_code,
                                        device=self.device)
        return build_loss(name, model, temperature=self.temperature, mini_batch_size=self.mini_batch_size,
                          matryoshka_dims=self.matryoshka_dims, guide=guide, gather_across_devices=gather,
                          negative_gradients=self.hard_negative_gradients)

    def _build_evaluator(self, window: int) -> Any:
        """The validation evaluator (``None`` without a validation set), reading passages at ``window`` tokens."""
        if self.val_dataset is None:
            return None
        from llama_index_bge_finetune.training.validation import validation_evaluator

        return validation_evaluator(self.val_dataset, window, self.query_instruction)

    def _save(self, model: Any, result: FinetuneResult) -> None:
        model.prompts = {"query": self.query_instruction} if self.query_instruction else {}
        model.default_prompt_name = None
        model.save_pretrained(self.model_output_path, create_model_card=False)
        data = {
            "queries": len(self.dataset.queries),
            "passages": len(self.dataset.corpus),
            "training pairs": result.pairs,
            "pairs with hard negatives": result.pairs_with_negatives,
            "query source": self.dataset.query_source or "unknown",
        }
        training = card_fields({
            "steps": result.steps, "train seconds": result.train_seconds,
            "examples per second": result.examples_per_second, "final loss": result.final_loss,
        })
        evaluation = dict(result.evaluation)
        if result.forgetting:
            for name in ("base", "fine_tuned", "interpolated"):
                if result.forgetting.get(name):
                    evaluation[f"general set: {name}"] = {
                        k: v for k, v in result.forgetting[name].items() if k != "queries"
                    }
        write_model_card(
            self.model_output_path, base_model=self.model_id, query_instruction=self.query_instruction,
            data=data, hyperparameters=card_fields(result.hyperparameters), training=training, evaluation=evaluation,
        )

    # ------------------------------------------------------------------ inference
    def get_finetuned_model(self, **model_kwargs: Any) -> "HuggingFaceEmbedding":  # noqa: F821
        """The fine-tuned model as a LlamaIndex ``HuggingFaceEmbedding`` that applies the query instruction.

        ``model_kwargs`` go to ``HuggingFaceEmbedding`` (e.g. ``embed_batch_size``, ``device``).
        """
        from llama_index_bge_finetune.encoding.llamaindex_embedding import from_finetuned

        if not os.path.isfile(os.path.join(self.model_output_path, "config_sentence_transformers.json")):
            raise TrainingError(
                f"No fine-tuned model in {self.model_output_path}: call finetune() first "
                "(or point model_output_path at a finished model folder)."
            )
        return from_finetuned(self.model_output_path, **model_kwargs)


def mining_pool_size(pairs: int) -> int:
    """Passages the miner ranks by default: 8 per training pair, at least 1,024 (``mining_pool_size(150) == 1200``)."""
    return max(MIN_MINING_POOL, MINING_POOL_PER_PAIR * pairs)


def _ir_scores(metrics: Dict[str, float]) -> Dict[str, float]:
    """Pick the headline metrics out of an ``InformationRetrievalEvaluator`` result."""
    wanted = {"cosine_ndcg@10": "ndcg@10", "cosine_accuracy@5": "hit_rate@5", "cosine_mrr@10": "mrr@10"}
    return {short: float(v) for k, v in metrics.items() for suffix, short in wanted.items() if k.endswith(suffix)}


def _strip_eval_prefix(metrics: Dict[str, float]) -> Dict[str, float]:
    """Trainer metrics (``eval_val_cosine_ndcg@10``) under the evaluator's own names (``val_cosine_ndcg@10``)."""
    return {k[len("eval_"):] if k.startswith("eval_") else k: v for k, v in metrics.items()}
