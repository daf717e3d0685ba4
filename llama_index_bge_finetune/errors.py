"""The package's exceptions, documented together.

Every error a user can cause carries a message that names the problem and the fix.
The CLI prints these messages as one paragraph and exits non-zero, without a traceback.

- :class:`BgeFinetuneError`: the root; catch it to catch everything below.
- :class:`DatasetError`: a dataset file or object is malformed (dangling ids, empty queries, ...).
- :class:`InputDocumentsError`: the documents folder is missing, empty or unreadable.
- :class:`OutputExistsError`: an output folder already holds a previous run and ``overwrite`` was not given.
- :class:`GenerationError`: question generation could not run (no LLM, bad prompt template, ...).
- :class:`TrainingError`: the fine-tuning configuration or data cannot train a model.
- :class:`EvaluationError`: an evaluation cannot be computed as asked.
- :class:`StaleVectorsError`: an index's vectors were made by another model than the one querying it.
- :class:`StalePipelineError`: a chosen retrieval pipeline (``retrieval.json``) was chosen for another model
  than the one that made an index's vectors (a :class:`StaleVectorsError`).
- :class:`IntegrationError`: a swap-in call got an argument it cannot use (a bad option, an unknown keyword).
- :class:`MissingFilesError`: a model, adapter or index folder lacks the files it needs.
- :class:`EncodeBackendError`: the chosen encoding backend cannot run (unknown name, Ray not installed, cluster unreachable).
- :class:`EmptyVocabularyError`: BM25 found no terms in a corpus (every text is stopwords, or a script the tokenizer drops).
- :class:`BM25IndexCorrupt`: a saved BM25 index folder fails its checksums or lacks files; rebuild it.
- :class:`RetrievalConfigError`: a ``retrieval.json`` (the retrieval to ship with a model) cannot be read.
"""

from __future__ import annotations


class BgeFinetuneError(Exception):
    """Root of every error this package raises on purpose."""


class DatasetError(BgeFinetuneError, ValueError):
    """A dataset is malformed or inconsistent."""


class InputDocumentsError(BgeFinetuneError, ValueError):
    """The input documents cannot be read."""


class OutputExistsError(BgeFinetuneError, FileExistsError):
    """An output folder holds a previous run and overwriting was not allowed."""


class GenerationError(BgeFinetuneError, RuntimeError):
    """Question generation cannot run as configured."""


class TrainingError(BgeFinetuneError, ValueError):
    """Fine-tuning cannot run as configured."""


class EvaluationError(BgeFinetuneError, ValueError):
    """An evaluation cannot be computed as asked."""


class StaleVectorsError(BgeFinetuneError, RuntimeError):
    """An index is queried with a model other than the one that embedded it."""


class StalePipelineError(StaleVectorsError):
    """A retrieval pipeline (dense, BM25 or hybrid, with its fusion weight) was chosen for another model than the index's."""


class IntegrationError(BgeFinetuneError, ValueError):
    """A swap-in function (re-embedding, adapter, Settings migration) got an argument it cannot use."""


class MissingFilesError(BgeFinetuneError, FileNotFoundError):
    """A model, adapter or persisted-index folder is missing or lacks the files it needs."""


class EncodeBackendError(BgeFinetuneError, RuntimeError):
    """Corpus encoding cannot run on the chosen backend (unknown name, Ray missing or unreachable)."""


class EmptyVocabularyError(BgeFinetuneError, ValueError):
    """BM25 has no terms for a corpus: every text tokenised to nothing under the chosen language and stopwords."""


class BM25IndexCorrupt(BgeFinetuneError, RuntimeError):
    """A saved BM25 index folder is incomplete or fails its checksums, so it cannot be trusted."""


class RetrievalConfigError(BgeFinetuneError, ValueError):
    """A ``retrieval.json`` cannot be read: missing, not JSON, of an unknown version, or with invalid fields."""
