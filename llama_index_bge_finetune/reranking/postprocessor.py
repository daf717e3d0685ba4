"""The fine-tuned reranker as a LlamaIndex node postprocessor (a ``SentenceTransformerRerank``).

:class:`FinetunedRerank` is llama-index-core's ``SentenceTransformerRerank`` with three differences:
it reads the blend weight the engine chose on validation data from the model folder (so a reranker
that did not beat the first stage keeps the retriever's order, and a weight of 0 skips the
cross-encoder entirely), it truncates pairs at the length the model was trained with (not 512), and
it scores the node text the embedding model saw (``MetadataMode.NONE`` by default, as our datasets
store passages).

Example::

    from llama_index.core import VectorStoreIndex
    from llama_index_bge_finetune.reranking import FinetunedRerank

    rerank = FinetunedRerank(model="exp_reranker", top_n=5)
    query_engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[rerank])
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.postprocessor import SentenceTransformerRerank
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llama_index_bge_finetune.reranking.scoring import blend, read_reranker_config

logger = logging.getLogger(__name__)


class FinetunedRerank(SentenceTransformerRerank):
    """Rerank retrieved nodes with a fine-tuned cross-encoder, blended with the retriever's scores.

    Args:
        top_n: nodes returned.
        model: folder (or hub id) of the cross-encoder.
        device: torch device; ``None`` picks one.
        keep_retrieval_score: keep the retriever's score in ``metadata["retrieval_score"]``.
        trust_remote_code: passed to ``CrossEncoder``.
        blend_weight: weight of the reranker against the retriever's score (0 = retriever order,
            1 = reranker alone); ``None`` uses the weight saved by the engine (1 when none was saved).
        max_length: token limit of a (query, passage) pair; ``None`` uses the trained one (else 512).
        metadata_mode: which node text is scored (``MetadataMode.NONE``: the passage alone).
        batch_size: pairs per forward pass.
    """

    blend_weight: float = Field(default=1.0, description="Reranker weight in the blend (0 = retriever order).")
    metadata_mode: MetadataMode = Field(default=MetadataMode.NONE, description="Node text that is scored.")
    batch_size: int = Field(default=32, description="Pairs per forward pass.")

    def __init__(
        self,
        top_n: int = 2,
        model: str = "cross-encoder/ms-marco-MiniLM-L-6-v2",
        device: Optional[str] = None,
        keep_retrieval_score: bool = False,
        trust_remote_code: bool = False,
        blend_weight: Optional[float] = None,
        max_length: Optional[int] = None,
        metadata_mode: MetadataMode = MetadataMode.NONE,
        batch_size: int = 32,
    ) -> None:
        from llama_index.core.utils import infer_torch_device
        from sentence_transformers.cross_encoder import CrossEncoder

        config = read_reranker_config(model)
        weight = float(config.get("blend_weight", 1.0)) if blend_weight is None else float(blend_weight)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"blend_weight must be in [0, 1] (0 = keep the retriever's order), got {weight}.")
        device = infer_torch_device() if device is None else device
        BaseNodePostprocessor.__init__(
            self, top_n=top_n, model=str(model), device=device, keep_retrieval_score=keep_retrieval_score,
            trust_remote_code=trust_remote_code, blend_weight=weight, metadata_mode=metadata_mode, batch_size=batch_size,
        )
        self._model = CrossEncoder(str(model), max_length=max_length or config.get("max_length") or 512, device=device,
                                   trust_remote_code=trust_remote_code)
        if weight == 0.0:
            logger.info("Reranker %s has blend weight 0 (it did not beat the first stage on validation): "
                        "nodes keep the retriever's order.", model)

    @classmethod
    def class_name(cls) -> str:
        return "FinetunedRerank"

    def _postprocess_nodes(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("FinetunedRerank needs the query: call it with query_str= or a QueryBundle.")
        if not nodes:
            return []
        first = [n.score for n in nodes]
        use_first = all(s is not None for s in first)
        if self.blend_weight == 0.0 and use_first:
            return sorted(nodes, key=lambda n: -float(n.score))[: self.top_n]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.model,
                     EventPayload.QUERY_STR: query_bundle.query_str, EventPayload.TOP_K: self.top_n},
        ) as event:
            scores = self._score(query_bundle.query_str, [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes])
            final = blend(first, scores, self.blend_weight) if use_first else scores
            for node, score in zip(nodes, final):
                if self.keep_retrieval_score:
                    node.node.metadata["retrieval_score"] = node.score
                node.score = float(score)
            new_nodes = sorted(nodes, key=lambda n: -n.score)[: self.top_n]
            event.on_end(payload={EventPayload.NODES: new_nodes})
        return new_nodes

    def _score(self, query: str, texts: List[str]) -> Any:
        import numpy as np
        import torch

        out = self._model.predict([(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False,
                                  activation_fn=torch.nn.Identity(), convert_to_numpy=True)
        return np.asarray(out, dtype=np.float64).reshape(-1)
