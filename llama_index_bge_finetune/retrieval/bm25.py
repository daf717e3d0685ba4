"""BM25 over a corpus (bm25s): exact top-k, whole-corpus scores for fusion, and a verified saved index.

:class:`BM25Index` tokenises like bm25s (lower case, words of two or more letters or digits, stopwords
removed, then PyStemmer's stemmer) and scores with bm25s's precomputed sparse matrix. Both
:meth:`~BM25Index.top_k` and :meth:`~BM25Index.score_all` are exact over the whole corpus: a block
of queries becomes a sparse query-term matrix and one sparse product with the term-document score
matrix gives every document's score (bm25s's own ``retrieve`` adds the same per-term rows one query
at a time). Ties rank by ascending corpus id, as the dense search does.

A saved index is a folder of bm25s's files plus ``bm25_meta.json``: the settings, the corpus ids, a
digest of the ids and texts, and a checksum of every file. :meth:`~BM25Index.load` verifies them
all before reading anything, and :meth:`~BM25Index.load_or_build` rebuilds (logging one warning)
when the folder is corrupt or was built from other texts or settings. Saving writes a temporary
folder beside the target and renames it into place, so a crash never leaves a half-written index.

Example::

    from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings

    texts = ["The Moon's gravity pulls the oceans into tides.", "Tidal locking slows a planet's spin."]
    index = BM25Index.load_or_build("bm25_index", texts, ["d1", "d2"], BM25Settings())
    ids, scores = index.top_k(["what causes ocean tides"], k=1)   # ids[0, 0] == "d1"
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from llama_index_bge_finetune.errors import BM25IndexCorrupt, EmptyVocabularyError, MissingFilesError, OutputExistsError
from llama_index_bge_finetune.retrieval.fusion import top_k_rows

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
META_NAME = "bm25_meta.json"
FORMAT = 1
#: bm25s's scoring variants.
BM25_METHODS: Tuple[str, ...] = ("robertson", "lucene", "atire", "bm25l", "bm25+")
# Every file a saved index may hold (bm25s's, then ours): save() replaces only folders made of these.
_INDEX_FILES = frozenset({"data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json",
                          "params.index.json", "nonoccurrence_array.index.npy", META_NAME})
_CORE_FILES = frozenset({"data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json",
                        "params.index.json"})
_BLOCK = 16_777_216  # scores held at once by top_k (64 MB of float32)


def _import_bm25s() -> Any:
    """The ``bm25s`` module, with its logger set back to inherit the application's level.

    bm25s sets its own logger to DEBUG when imported, which would print its debug lines ("Building index
    from IDs objects") wherever an application logs at INFO.
    """
    import bm25s

    if logging.getLogger("bm25s").level == logging.DEBUG:
        logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


@dataclass(frozen=True)
class BM25Settings:
    """How BM25 tokenises and scores; part of a saved index, which is rebuilt when they change.

    Attributes:
        language: PyStemmer's stemmer name (``"english"``, ``"german"``, ``"porter"``, ...; see
            ``Stemmer.algorithms()``), or ``None`` for no stemming.
        stopwords: a bm25s stopword list name (``"en"``, ``"de"``, ``"fr"``, ...), a list of words
            (lower-cased here, as the text is), or ``None`` to keep every word.
        k1: term-frequency saturation.
        b: document-length normalisation.
        method: the bm25s variant, one of :data:`BM25_METHODS`.

    Example::

        settings = BM25Settings(language="german", stopwords="de")
        BM25Settings.from_dict(settings.to_dict()) == settings   # True
    """

    language: Optional[str] = "english"
    stopwords: Union[str, Tuple[str, ...], None] = "en"
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"

    def __post_init__(self) -> None:
        if self.language is not None:
            import Stemmer

            if self.language not in Stemmer.algorithms():
                raise ValueError(f"Unknown stemmer language {self.language!r}; use None (no stemming) or one of "
                                 f"{', '.join(Stemmer.algorithms())}.")
        if isinstance(self.stopwords, (list, tuple, set, frozenset)):
            object.__setattr__(self, "stopwords", tuple(sorted({str(w).lower() for w in self.stopwords})))
        elif self.stopwords is not None:
            _check_stopwords_name(self.stopwords)
        if self.method not in BM25_METHODS:
            raise ValueError(f"Unknown BM25 method {self.method!r}; use one of {', '.join(BM25_METHODS)}.")
        if not (isinstance(self.k1, (int, float)) and self.k1 >= 0 and isinstance(self.b, (int, float))
                and 0 <= self.b <= 1):
            raise ValueError(f"BM25 needs k1 >= 0 and b in [0, 1] (usual: k1=1.5, b=0.75), "
                             f"got k1={self.k1!r}, b={self.b!r}.")
        object.__setattr__(self, "k1", float(self.k1))
        object.__setattr__(self, "b", float(self.b))

    def to_dict(self) -> Dict[str, Any]:
        """The settings as a JSON-able dict (a stopword list becomes a JSON list)."""
        stop = list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords
        return {"language": self.language, "stopwords": stop, "k1": self.k1, "b": self.b, "method": self.method}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BM25Settings":
        """The settings saved by :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - {"language", "stopwords", "k1", "b", "method"}
        if unknown:
            raise ValueError(f"Unknown BM25 setting(s) {sorted(unknown)}; the settings are language, stopwords, "
                             "k1, b and method.")
        return cls(**dict(data))

    def describe(self) -> str:
        """The tokenisation in words, for messages: ``"language='english', stopwords='en'"``."""
        stop = f"{len(self.stopwords)} listed words" if isinstance(self.stopwords, tuple) else repr(self.stopwords)
        return f"language={self.language!r}, stopwords={stop}"

    def _tokenize(self, texts: List[str], return_ids: bool) -> Any:
        bm25s = _import_bm25s()

        stemmer = None
        if self.language is not None:
            import Stemmer

            stemmer = Stemmer.Stemmer(self.language)
        stop = list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords
        return bm25s.tokenize(texts, stopwords=stop, stemmer=stemmer, return_ids=return_ids, show_progress=False)


def _check_stopwords_name(name: Any) -> None:
    bm25s = _import_bm25s()

    fix = ("use a bm25s list name such as 'en', 'de', 'fr', 'es', 'it', 'nl', 'pt', 'ru', 'sv', 'no', 'da', 'zh', "
           "'tr', 'ko' or 'en_plus', a list of words, or None")
    if not isinstance(name, str):
        raise TypeError(f"stopwords must be a list name, a list of words or None, got {name!r}; {fix}.")
    try:
        bm25s.tokenize(["probe"], stopwords=name, show_progress=False)
    except ValueError:
        raise ValueError(f"Unknown stopwords {name!r}; {fix}.") from None


def text_digest(texts: Sequence[str], ids: Sequence[str]) -> str:
    """``"sha256:<hex>"`` over the ids and texts in order (length-prefixed, so no two corpora collide by joining)."""
    h = hashlib.sha256()
    for doc_id, text in zip(ids, texts):
        for part in (str(doc_id).encode("utf-8"), text.encode("utf-8")):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return "sha256:" + h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class BM25Index:
    """A BM25 index of a corpus: exact top-k search, whole-corpus scores, verified save and load.

    Build it with :meth:`build`, :meth:`load` or :meth:`load_or_build`, not the constructor.

    Attributes:
        ids: the corpus ids, in row order.
        settings: the tokenisation and scoring settings.
        digest: :func:`text_digest` of the ids and texts it was built from.

    Example::

        index = BM25Index.build(texts, ids, BM25Settings())
        ids_top, scores_top = index.top_k(questions, k=100)    # (n, 100) corpus ids and BM25 scores
        full = index.score_all(questions)                      # (n, len(ids)), for whole-corpus fusion
        index.save("out/bm25")
    """

    def __init__(self, model: Any, ids: Sequence[str], settings: BM25Settings, digest: str) -> None:
        import scipy.sparse as sp

        self._model = model
        self.ids: List[str] = [str(i) for i in ids]
        self.settings = settings
        self.digest = digest
        scores = model.scores
        n_terms = len(scores["indptr"]) - 1
        # bm25s keeps a CSC (documents x terms) matrix; read as CSR it is terms x documents.
        self._matrix = sp.csr_matrix((scores["data"], scores["indices"], scores["indptr"]),
                                     shape=(n_terms, int(scores["num_docs"])))
        self._vocab: Dict[str, int] = {t: i for t, i in model.vocab_dict.items() if t and i < n_terms}
        self._tie_rank: Optional[np.ndarray] = None

    @property
    def n_docs(self) -> int:
        """How many documents the index holds."""
        return len(self.ids)

    @property
    def n_terms(self) -> int:
        """How many distinct terms (after stopwords and stemming) the corpus has."""
        return len(self._vocab)

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[str], settings: Optional[BM25Settings] = None) -> "BM25Index":
        """Tokenise and index ``texts`` (one document each; join title and body into one text beforehand).

        Args:
            texts: the documents.
            ids: their ids, unique, same length.
            settings: tokenisation and scoring (default :class:`BM25Settings`: English stemming and stopwords).

        Raises:
            ValueError: ``texts`` and ``ids`` differ in length, an id repeats, or there are no texts.
            EmptyVocabularyError: no text has a term left after tokenisation.
        """
        bm25s = _import_bm25s()

        settings = settings or BM25Settings()
        texts = [str(t) for t in texts]
        ids = [str(i) for i in ids]
        _check_corpus(texts, ids)
        start = time.perf_counter()
        tokens = settings._tokenize(texts, return_ids=True)
        if not any(term for term in tokens.vocab):
            raise EmptyVocabularyError(
                f"BM25 has no terms for this corpus of {len(texts)} texts: with {settings.describe()} every text "
                "tokenised to nothing (only stopwords, words shorter than two letters, or characters the tokenizer "
                "drops). Keep stopwords with BM25Settings(stopwords=None), pick the corpus's language "
                "(language=..., stopwords=...), or leave BM25 out for this corpus.")
        model = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method, backend="numpy")
        model.index(tokens, show_progress=False)
        index = cls(model, ids, settings, text_digest(texts, ids))
        logger.info("Built a BM25 index of %d texts (%d terms, %s) in %.2f s.", len(texts), index.n_terms,
                    settings.describe(), time.perf_counter() - start)
        return index

    def _query_matrix(self, queries: Sequence[str]) -> Any:
        """The (n_queries, n_terms) sparse matrix of query-term counts (a repeated term counts again, as in bm25s)."""
        import scipy.sparse as sp

        tokens = self.settings._tokenize(list(queries), return_ids=False)
        rows: List[int] = []
        cols: List[int] = []
        for r, terms in enumerate(tokens):
            for term in terms:
                col = self._vocab.get(term)
                if col is not None:
                    rows.append(r)
                    cols.append(col)
        data = np.ones(len(rows), dtype=self._matrix.dtype)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(tokens), self._matrix.shape[0]))

    def _score_blocks(self, queries: Union[str, Sequence[str]], block: int) -> Iterator[Tuple[int, np.ndarray]]:
        queries = [queries] if isinstance(queries, str) else list(queries)
        q = self._query_matrix(queries)
        step = max(1, block // max(1, self.n_docs))
        for start in range(0, len(queries), step):
            yield start, (q[start:start + step] @ self._matrix).toarray().astype(np.float32, copy=False)

    def score_all(self, queries: Union[str, Sequence[str]]) -> np.ndarray:
        """BM25 score of every document for every query, ``(n_queries, n_docs)`` float32, in corpus order.

        For exact whole-corpus fusion with dense scores (``queries @ corpus.T``). Holds ``4 * n_queries *
        n_docs`` bytes; use :meth:`top_k` when only the best documents are needed.
        """
        queries = [queries] if isinstance(queries, str) else list(queries)
        out = np.zeros((len(queries), self.n_docs), dtype=np.float32)
        for start, scores in self._score_blocks(queries, _BLOCK):
            out[start:start + len(scores)] = scores
        return out

    def top_k_rows(self, queries: Union[str, Sequence[str]], k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Corpus rows and scores of each query's ``k`` best documents, best first, exact.

        ``k`` is clipped to the corpus size. A query with no corpus term scores 0 everywhere; its rows
        are then the first ids in sorted order. Returns ``(rows, scores)``, each (n_queries, k).
        """
        queries = [queries] if isinstance(queries, str) else list(queries)
        k = max(0, min(int(k), self.n_docs))
        rows = np.zeros((len(queries), k), dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        for start, block in self._score_blocks(queries, _BLOCK):
            r, s = top_k_rows(block, k, self._id_rank())
            rows[start:start + len(block)], scores[start:start + len(block)] = r, s
        return rows, scores

    def top_k(self, queries: Union[str, Sequence[str]], k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Ids and scores of each query's ``k`` best documents: :meth:`top_k_rows` with rows mapped to ids.

        Returns ``(ids, scores)``: an (n_queries, k) object array of id strings and float32 scores.
        """
        rows, scores = self.top_k_rows(queries, k)
        return np.asarray(self.ids, dtype=object)[rows], scores

    def _id_rank(self) -> np.ndarray:
        if self._tie_rank is None:
            rank = np.empty(self.n_docs, dtype=np.int64)
            rank[np.argsort(np.asarray(self.ids, dtype=object), kind="stable")] = np.arange(self.n_docs)
            self._tie_rank = rank
        return self._tie_rank

    def save(self, directory: PathLike) -> Path:
        """Write the index to ``directory`` atomically (a temporary folder beside it, then a rename).

        An existing index there is replaced; a folder holding anything else is refused.

        Raises:
            OutputExistsError: ``directory`` exists and holds files that are not a BM25 index.
        """
        target = Path(directory)
        _check_replaceable(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
        try:
            self._model.save(str(tmp))  # no corpus saved, so no progress bar
            files = {p.name: _file_sha256(p) for p in sorted(tmp.iterdir())}
            meta = {"format": FORMAT, "settings": self.settings.to_dict(), "n_docs": self.n_docs,
                    "text_digest": self.digest, "files": files, "ids": self.ids}
            (tmp / META_NAME).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            _swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: PathLike) -> "BM25Index":
        """The index saved in ``directory``, after checking every file against its recorded checksum.

        Raises:
            MissingFilesError: there is no folder at ``directory``.
            BM25IndexCorrupt: the folder lacks ``bm25_meta.json`` or a file, or a file fails its checksum.
        """
        bm25s = _import_bm25s()

        folder = Path(directory)
        if not folder.is_dir():
            raise MissingFilesError(f"No BM25 index at {folder}: build one with BM25Index.build(texts, ids)"
                                    f".save({str(folder)!r}), or call BM25Index.load_or_build.")
        meta = _read_meta(folder)
        try:
            settings = BM25Settings.from_dict(meta["settings"])
            model = bm25s.BM25.load(str(folder), load_vocab=True)
            num_docs = int(model.scores["num_docs"])
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise _corrupt(folder, f"its files do not load ({exc})") from exc
        if not num_docs == meta["n_docs"] == len(meta["ids"]):
            raise _corrupt(folder, f"it records {meta['n_docs']} documents and {len(meta['ids'])} ids, "
                                   f"but its matrix has {num_docs}")
        return cls(model, meta["ids"], settings, meta["text_digest"])

    @classmethod
    def load_or_build(cls, directory: PathLike, texts: Sequence[str], ids: Sequence[str],
                      settings: Optional[BM25Settings] = None) -> "BM25Index":
        """The index in ``directory`` if it matches ``texts``, ``ids`` and ``settings``, else a fresh one saved there.

        A folder that is corrupt, or was built from other texts, ids or settings, is rebuilt with one
        logged warning; a missing one is built (logged at info level: the usual first run).

        Raises:
            EmptyVocabularyError: the corpus has no terms under ``settings`` (nothing is written).
        """
        settings = settings or BM25Settings()
        texts = [str(t) for t in texts]
        ids = [str(i) for i in ids]
        folder = Path(directory)
        if not folder.exists():
            logger.info("No BM25 index at %s yet: building one.", folder)
        else:
            reason = _stale_reason(folder, text_digest(texts, ids), settings)
            if isinstance(reason, BM25Index):
                return reason
            logger.warning("Rebuilding the BM25 index at %s: %s.", folder, reason)
        index = cls.build(texts, ids, settings)
        index.save(folder)
        return index


def _stale_reason(folder: Path, digest: str, settings: BM25Settings) -> Union[BM25Index, str]:
    """The index in ``folder`` when it matches, else why it cannot be used."""
    try:
        index = BM25Index.load(folder)
    except (BM25IndexCorrupt, MissingFilesError) as exc:
        return str(exc)
    reasons = []
    if index.digest != digest:
        reasons.append("it was built from other texts or ids than the corpus given")
    if index.settings != settings:
        reasons.append(f"it was built with other settings ({index.settings.to_dict()}, now {settings.to_dict()})")
    return "; ".join(reasons) if reasons else index


def _check_corpus(texts: List[str], ids: List[str]) -> None:
    if len(texts) != len(ids):
        raise ValueError(f"BM25 needs one id per text, got {len(texts)} texts and {len(ids)} ids.")
    if not texts:
        raise ValueError("BM25 needs at least one text to index, got none.")
    seen = set()
    for doc_id in ids:
        if doc_id in seen:
            raise ValueError(f"BM25 corpus ids must be unique; {doc_id!r} repeats. Deduplicate the corpus first.")
        seen.add(doc_id)


def _corrupt(folder: Path, what: str) -> BM25IndexCorrupt:
    return BM25IndexCorrupt(f"The BM25 index at {folder} is corrupt: {what}. Delete the folder and build it again, "
                            "or use BM25Index.load_or_build, which rebuilds it.")


def _read_meta(folder: Path) -> Dict[str, Any]:
    """``bm25_meta.json``, after every file it lists has passed its checksum."""
    path = folder / META_NAME
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _corrupt(folder, f"{META_NAME} is missing (an interrupted or foreign write)") from None
    except (OSError, ValueError) as exc:
        raise _corrupt(folder, f"{META_NAME} is unreadable ({exc})") from exc
    needed = {"format", "settings", "n_docs", "text_digest", "files", "ids"}
    if not isinstance(meta, dict) or not needed <= set(meta) or meta["format"] != FORMAT:
        raise _corrupt(folder, f"{META_NAME} is not a format-{FORMAT} record of {sorted(needed)}")
    unlisted = sorted(_CORE_FILES - set(meta["files"]))
    if unlisted:
        raise _corrupt(folder, f"{META_NAME} lists no checksum for {', '.join(unlisted)}")
    for name, expected in meta["files"].items():
        file = folder / name
        if not file.is_file():
            raise _corrupt(folder, f"{name} is missing")
        if _file_sha256(file) != expected:
            raise _corrupt(folder, f"{name} fails its checksum (changed or truncated since it was saved)")
    return meta


def _check_replaceable(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise OutputExistsError(f"Cannot save a BM25 index to {target}: it is a file. Choose a folder path.")
    foreign = sorted(p.name for p in target.iterdir() if p.name not in _INDEX_FILES)
    if foreign:
        raise OutputExistsError(f"Cannot save a BM25 index to {target}: the folder holds other files "
                                f"({', '.join(foreign[:5])}). Choose a new or empty folder.")


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, moving an existing ``target`` aside first and deleting it after."""
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
