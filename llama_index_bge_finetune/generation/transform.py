"""Generate questions while an ``IngestionPipeline`` runs."""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Sequence

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, TransformComponent

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.generation.defaults import Generator, default_generator
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure

logger = logging.getLogger(__name__)


class QuestionGenerationTransform(TransformComponent):
    """A pipeline step that writes questions for the nodes passing through, and passes them on unchanged.

    Put it after the splitter; the questions accumulate in :attr:`dataset` (and in
    ``output_path``, rewritten after every batch). With ``checkpoint_path`` a rerun asks only
    for nodes not yet done. Note that a cached ``IngestionPipeline`` step is not re-run, so
    keep ``output_path`` to have the dataset on disk.

    Example::

        from llama_index.core.ingestion import IngestionPipeline
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index_bge_finetune.generation import OfflineQuestionGenerator, QuestionGenerationTransform

        questions = QuestionGenerationTransform(generator=OfflineQuestionGenerator(), output_path="qa.json")
        nodes = IngestionPipeline(transformations=[SentenceSplitter(), questions]).run(documents=docs)
        questions.dataset.save_json("train.json")
    """

    generator_description: str = Field(default="", description="Which generator writes the questions.")
    checkpoint_path: Optional[str] = Field(default=None, description="JSONL checkpoint; reruns skip finished nodes.")
    output_path: Optional[str] = Field(
        default=None, description="Dataset file (.json or .jsonl) rewritten after each batch of nodes."
    )

    _generator: Any = PrivateAttr()
    _datasets: List[EmbeddingQAFinetuneDataset] = PrivateAttr(default_factory=list)
    _failures: List[NodeFailure] = PrivateAttr(default_factory=list)

    def __init__(
        self,
        generator: Optional[Generator] = None,
        checkpoint_path: Optional[str] = None,
        output_path: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if generator is None:
            generator, description = default_generator()
        else:
            description = generator.describe()
        super().__init__(
            generator_description=description,
            checkpoint_path=str(checkpoint_path) if checkpoint_path else None,
            output_path=str(output_path) if output_path else None,
            **kwargs,
        )
        self._generator = generator

    @classmethod
    def class_name(cls) -> str:
        return "QuestionGenerationTransform"

    @property
    def dataset(self) -> EmbeddingQAFinetuneDataset:
        """All questions written so far, over every batch of nodes seen."""
        if not self._datasets:
            return EmbeddingQAFinetuneDataset(
                queries={}, corpus={}, relevant_docs={}, query_source=self._generator.query_source
            )
        return EmbeddingQAFinetuneDataset.merge(self._datasets)

    @property
    def failures(self) -> List[NodeFailure]:
        """Nodes that got no question, with the reason."""
        return list(self._failures)

    def _collect(self, result: GenerationResult) -> None:
        self._datasets.append(result.dataset)
        self._failures.extend(result.failures)
        if self.output_path:
            ds = self.dataset
            (ds.save_jsonl if self.output_path.endswith(".jsonl") else ds.save_json)(self.output_path)
        logger.info("%d questions for %d nodes (%d failed).", len(result.dataset.queries), len(result.dataset.corpus), len(result.failures))

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        self._collect(self._generator.generate(nodes, checkpoint_path=self.checkpoint_path))
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        self._collect(await self._generator.agenerate(nodes, checkpoint_path=self.checkpoint_path))
        return nodes
