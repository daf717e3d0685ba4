"""An opt-in faster CPU backend: the model's transformer exported to ONNX and quantised to int8.

Its vectors are close to, not equal to, the fp32 ones (all-MiniLM-L6-v2 on SciFact abstracts: cosine
0.996 on average, 0.992 at worst), so its metrics differ slightly: compare it with the exact
``"torch"`` backend once (``compare_models`` with both) before trusting it.

A text's vector does not depend on the other texts it is encoded with: activations are quantised with
one scale per token (:mod:`~llama_index_bge_finetune.encoding.onnx_quantize`), and texts share an
ONNX Runtime call only with texts of the same token length, so no padding enters any computation.
A query encoded alone and the same query in a batch give the same vector. The 7-bit weights keep the
integer products exact on AVX2, AVX-512 and VNNI CPUs alike.

The export uses ``torch.onnx.export`` (no ``optimum``) and is cached next to the embedding cache,
keyed by the model fingerprint.

Requires the ``onnx`` extra: ``pip install "llama-index-bge-finetune[onnx]"``.

Example::

    from llama_index_bge_finetune.evaluation import EvalModel, compare_models

    compare_models({"exact": "out/model", "int8": EvalModel("out/model", backend="onnx-int8")}, "val.json")
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.encoding.encoders import Encoder, SentenceTransformerEncoder

logger = logging.getLogger(__name__)

POOLING_MODES = ("mean", "cls")
#: Names the quantisation scheme in the export's file name and the fingerprint (a new scheme re-exports).
QUANTISATION = "int8-per-token-w7"


class OnnxInt8Encoder(Encoder):
    """Encode with an int8-quantised ONNX export of a ``SentenceTransformer`` (mean or CLS pooling).

    Build it with :meth:`from_encoder`; it applies the same query instruction, truncation,
    pooling and normalisation as the PyTorch model it came from.
    """

    backend = "onnx-int8"

    def __init__(self, source: SentenceTransformerEncoder, onnx_path: Path, batch_size: int = 64) -> None:
        import onnxruntime as ort

        st = source.model
        self.tokenizer = st.tokenizer
        self.max_length = int(st.max_seq_length or 512)
        self.pooling = _pooling_mode(st)
        self.source_fp = source.fingerprint()
        self.query_instruction = source.query_instruction
        self.document_prompt = source.document_prompt
        self.normalize = source.normalize
        self.batch_size = batch_size
        self.name = source.name
        self.source = source.source
        self.onnx_path = onnx_path
        options = ort.SessionOptions()
        # Spin-waiting worker threads collapse when the CPU is shared with other jobs; sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._fp: Optional[str] = None

    @classmethod
    def from_encoder(cls, encoder: Encoder, cache_dir: Optional[str] = None) -> "OnnxInt8Encoder":
        """Export (or reuse the cached export of) a PyTorch sentence-transformers encoder."""
        if not isinstance(encoder, SentenceTransformerEncoder):
            raise EvaluationError(f"backend='onnx-int8' needs a sentence-transformers model, not {type(encoder).__name__}.")
        try:
            for module in ("onnx", "onnxruntime"):  # the exporter and the runtime
                importlib.import_module(module)
        except ImportError as exc:
            raise EvaluationError(
                f"backend='onnx-int8' needs onnx and onnxruntime ({exc}); install them with "
                "`pip install \"llama-index-bge-finetune[onnx]\"` or use backend='torch'."
            ) from exc
        _pooling_mode(encoder.model)
        root = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "llama-index-bge-finetune-onnx"
        path = root / "onnx" / encoder.fingerprint() / f"model-{QUANTISATION}.onnx"
        if not path.is_file():
            export_int8(encoder.model, path)
        else:
            logger.info("Reusing the int8 ONNX export at %s.", path)
        return cls(encoder, path, batch_size=encoder.batch_size)

    def _fingerprint_parts(self) -> Sequence[Any]:
        import onnxruntime

        return [self.source_fp, f"onnx-{QUANTISATION}", onnxruntime.__version__]

    def _encode(self, texts: List[str], is_query: bool) -> np.ndarray:
        prompt = (self.query_instruction if is_query else self.document_prompt) or ""
        texts = [prompt + t for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        enc = self.tokenizer(texts, padding=False, truncation=True, max_length=self.max_length)
        # One run per token length (longest first): no padding, so a text's vector is independent of its batch.
        by_length: Dict[int, List[int]] = {}
        for i, ids in enumerate(enc["input_ids"]):
            by_length.setdefault(len(ids), []).append(i)
        out: List[Optional[np.ndarray]] = [None] * len(texts)
        for length in sorted(by_length, reverse=True):
            group = by_length[length]
            for start in range(0, len(group), self.batch_size):
                idx = group[start:start + self.batch_size]
                feeds = {name: np.array([enc[name][i] for i in idx], dtype=np.int64) for name in self.input_names}
                hidden = self.session.run(None, feeds)[0]
                pooled = hidden[:, 0] if self.pooling == "cls" else hidden.mean(axis=1)  # no padding to mask
                for j, i in enumerate(idx):
                    out[i] = pooled[j]
        return np.stack(out)  # type: ignore[arg-type]


def _pooling_mode(st: Any) -> str:
    modules = [type(m).__name__ for m in st]
    pools = [m for m in st if type(m).__name__ == "Pooling"]
    mode = str(getattr(pools[0], "pooling_mode", "")) if pools else ""
    mode = {"cls_token": "cls", "mean_tokens": "mean"}.get(mode, mode)
    if mode not in POOLING_MODES or modules[0] != "Transformer" or set(modules[1:]) - {"Pooling", "Normalize"}:
        raise EvaluationError(
            f"backend='onnx-int8' supports Transformer + {' or '.join(POOLING_MODES)} Pooling (+ Normalize) models; "
            f"this one is {modules} with pooling {mode!r}. Use backend='torch'."
        )
    return mode


def export_int8(st: Any, path: Path) -> Path:
    """Export ``st``'s transformer to ONNX (dynamic batch and length) and quantise it to int8 per token."""
    import torch

    from llama_index_bge_finetune.encoding.onnx_quantize import quantize_per_token

    hf = st[0].auto_model.eval()
    sample = st.tokenizer(["a short text", "a somewhat longer sample text to trace padding"], padding=True,
                          return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _KeywordCall(torch.nn.Module):
        """Calls the Hugging Face model with keyword arguments, as the exporter needs."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs: Dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    fp32 = path.with_name(f"model-fp32-{os.getpid()}.onnx")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    logger.info("Exporting the model to ONNX and quantising it to int8 (once per model) ...")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_KeywordCall(hf), (), str(fp32), kwargs={n: sample[n] for n in names}, input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    try:
        quantize_per_token(fp32, tmp)
        os.replace(tmp, path)
    finally:
        for p in (fp32, tmp):
            if p.exists():
                p.unlink()
    return path
