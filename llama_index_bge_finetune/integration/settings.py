"""Make a fine-tuned model the app-wide embedding: ``Settings.embed_model``, and the ServiceContext migration.

LlamaIndex 0.10+ replaced ``ServiceContext`` with the global ``Settings``; in llama-index-core 0.14
``ServiceContext(...)`` and ``ServiceContext.from_defaults(...)`` raise ``ValueError``. Code from
older tutorials that did ``ServiceContext.from_defaults(embed_model=...)`` becomes::

    from llama_index_bge_finetune.integration import use_finetuned

    use_finetuned("out/model")                 # Settings.embed_model = the fine-tuned model

    with use_finetuned("out/model"):           # or only inside a block
        index = VectorStoreIndex.from_documents(docs)
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Union

from llama_index_bge_finetune.errors import IntegrationError, MissingFilesError
from llama_index_bge_finetune.encoding.llamaindex_embedding import from_finetuned

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# ServiceContext.from_defaults keyword -> Settings attribute (llama-index-core 0.14 names).
_SERVICE_CONTEXT_KEYS: Dict[str, str] = {
    "llm": "llm",
    "embed_model": "embed_model",
    "node_parser": "node_parser",
    "text_splitter": "text_splitter",
    "transformations": "transformations",
    "chunk_size": "chunk_size",
    "chunk_overlap": "chunk_overlap",
    "callback_manager": "callback_manager",
    "num_output": "num_output",
    "context_window": "context_window",
    "prompt_helper": "prompt_helper",
}


def resolve_finetuned(path_or_model: Any) -> Any:
    """A LlamaIndex embedding from a model folder (via :func:`from_finetuned`) or an embedding as is."""
    from llama_index.core.base.embeddings.base import BaseEmbedding

    if isinstance(path_or_model, BaseEmbedding):
        return path_or_model
    if isinstance(path_or_model, (str, os.PathLike)):
        if not os.path.isdir(path_or_model):
            raise MissingFilesError(
                f"{path_or_model} is not a model folder. Pass the output folder of a fine-tuning run "
                "(it holds config_sentence_transformers.json) or a LlamaIndex embedding object."
            )
        return from_finetuned(path_or_model)
    raise TypeError(
        f"Cannot use a {type(path_or_model).__name__} as an embedding model: pass a model folder path "
        "or a LlamaIndex BaseEmbedding (e.g. from_finetuned(path))."
    )


class use_finetuned:  # noqa: N801 - used like a function, also a context manager
    """Set ``Settings.embed_model`` to a fine-tuned model, with the query instruction it was saved with.

    Works as a plain call (the change stays) or as a context manager (the previous model comes back
    on exit, even after an exception)::

        from llama_index.core import Settings, VectorStoreIndex
        from llama_index_bge_finetune import use_finetuned

        use_finetuned("out/model")
        index = VectorStoreIndex.from_documents(docs)        # embeds with the fine-tuned model

        with use_finetuned("out/model") as embed_model:
            assert Settings.embed_model is embed_model

    Args:
        path_or_model: a fine-tuned model folder, or any LlamaIndex ``BaseEmbedding``.

    An index built earlier with another model keeps that model's vectors: re-embed it with
    :func:`reembed_index` (or load it with :func:`load_index`, which refuses the mismatch).
    """

    def __init__(self, path_or_model: Union[PathLike, Any]) -> None:
        from llama_index.core import Settings

        self.embed_model = resolve_finetuned(path_or_model)
        self._previous: Optional[Any] = Settings._embed_model
        Settings.embed_model = self.embed_model
        logger.info("Settings.embed_model is now %s", self.embed_model.model_name)

    def __enter__(self) -> Any:
        return self.embed_model

    def __exit__(self, *exc: Any) -> None:
        from llama_index.core import Settings

        Settings._embed_model = self._previous


def settings_from_service_context(**service_context_kwargs: Any) -> Any:
    """Apply the keywords of an old ``ServiceContext.from_defaults(...)`` call to ``Settings``.

    A one-line migration for code written for llama-index < 0.10: replace
    ``service_context = ServiceContext.from_defaults(embed_model=..., llm=..., chunk_size=...)``
    with ``settings_from_service_context(embed_model=..., llm=..., chunk_size=...)`` and drop the
    ``service_context=`` arguments. ``embed_model`` may be a fine-tuned model folder.
    Returns ``Settings``.

    Example::

        settings_from_service_context(embed_model="out/model", chunk_size=512)
        index = VectorStoreIndex.from_documents(docs)

    Raises:
        IntegrationError: a keyword that Settings has no equivalent for (the message lists the valid ones).
    """
    from llama_index.core import Settings

    unknown = sorted(set(service_context_kwargs) - set(_SERVICE_CONTEXT_KEYS))
    if unknown:
        raise IntegrationError(
            f"ServiceContext keyword(s) {unknown} have no Settings equivalent; valid keywords are "
            f"{sorted(_SERVICE_CONTEXT_KEYS)}. Pass other components directly to the index or query engine."
        )
    for key, value in service_context_kwargs.items():
        if key == "embed_model" and isinstance(value, (str, os.PathLike)) and os.path.isdir(value):
            value = from_finetuned(value)
        setattr(Settings, _SERVICE_CONTEXT_KEYS[key], value)
    return Settings
