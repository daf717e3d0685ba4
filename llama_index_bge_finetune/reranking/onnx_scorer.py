"""Int8 ONNX scoring of a cross-encoder, through the evaluation suite's int8 export.

The export is :func:`llama_index_bge_finetune.encoding.onnx_encoder.export_int8` (dynamic int8
weight quantisation with onnxruntime); the cross-encoder's classification logits take the place of
the bi-encoder's hidden states, so both backends share one exporter.

Example::

    from llama_index_bge_finetune.reranking.onnx_scorer import OnnxInt8CrossEncoderScorer

    scorer = OnnxInt8CrossEncoderScorer("exp_reranker")
    scores = scorer.score("What causes tides?", ["The Moon's gravity ...", "Tidal locking ..."])
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional, Sequence

import numpy as np

from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer


class OnnxInt8CrossEncoderScorer(CrossEncoderScorer):
    """Scores (query, passage) pairs with an int8 ONNX export of a cross-encoder (CPU, onnxruntime).

    Args:
        model: a cross-encoder folder.
        batch_size: pairs per run of the session.
        max_length: token limit of a pair (``None``: the model's own).
        onnx_path: where the exported model is kept (default ``<model>/onnx/model_int8.onnx``).
    """

    def __init__(self, model: Any, batch_size: int = 32, max_length: Optional[int] = None,
                 onnx_path: Optional[os.PathLike] = None) -> None:
        import onnxruntime as ort
        import torch

        from llama_index_bge_finetune.encoding.onnx_encoder import export_int8

        super().__init__(model, batch_size=batch_size, max_length=max_length, device="cpu")
        path = Path(onnx_path) if onnx_path else Path(self.name) / "onnx" / "model_int8.onnx"
        if not path.is_file():
            export_int8(_LogitsExport(self.model, torch), path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = self.model.tokenizer
        self.max_length = int(self.model.max_seq_length)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Raw logits of ``query`` against each passage; the call's wall time is recorded."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        t = time.perf_counter()
        out: List[np.ndarray] = []
        for start in range(0, len(passages), self.batch_size):
            chunk = list(passages[start:start + self.batch_size])
            enc = self.tokenizer([query] * len(chunk), chunk, padding=True, truncation="longest_first",
                                 max_length=self.max_length, return_tensors="np")
            feeds = {n: enc[n].astype(np.int64) for n in self.input_names if n in enc}
            out.append(np.asarray(self.session.run(None, feeds)[0], dtype=np.float32).reshape(len(chunk), -1)[:, 0])
        self.seconds_per_query.append(time.perf_counter() - t)
        return np.concatenate(out)


def _LogitsExport(model: Any, torch: Any) -> Any:  # noqa: N802 - builds the exporter's expected shape
    """What ``export_int8`` reads from a sentence-transformers model: ``[0].auto_model`` and ``.tokenizer``.

    The cross-encoder's logits are returned under the bi-encoder's output name.
    """

    class _Logits(torch.nn.Module):
        def __init__(self, hf: Any) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, **kwargs: Any) -> Any:
            return SimpleNamespace(last_hidden_state=self.hf(**kwargs).logits)

    hf = model[0].auto_model
    wrapped = _Logits(hf)
    return _Indexable([SimpleNamespace(auto_model=wrapped)], model.tokenizer)


class _Indexable(list):
    def __init__(self, items: List[Any], tokenizer: Any) -> None:
        super().__init__(items)
        self.tokenizer = tokenizer
