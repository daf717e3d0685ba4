"""A matrix of vectors in one ``.npy`` file, written chunk by chunk and read back memory-mapped.

A corpus of 10M passages at 384 dimensions is 15 GB of float32: more than many machines hold. The
embedding caches therefore never build the whole matrix in RAM. :func:`write_vectors` encodes one
chunk of rows at a time into a memory-mapped file beside the final one, records after each chunk how
many rows are done, and renames the file into place when it is complete; a killed run resumes from
the last finished chunk instead of re-encoding from the start. Processes writing the same file (the
ranks of a distributed run) take turns on a lock file beside it: the first encodes, the others read
its result. :func:`read_vectors` opens a finished
file with ``mmap_mode="r"``: pages are read from disk as the search touches them.

``dtype="float16"`` halves the file and the pages read per search; the search converts each chunk
back to float32 before scoring (the accuracy cost on SciFact is in ``benchmarks/bench_scale.py``).

Example::

    import numpy as np
    from llama_index_bge_finetune.retrieval.vector_file import read_vectors, write_vectors

    rows = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    write_vectors("vecs.npy", 10, lambda start, stop: rows[start:stop], chunk_rows=4)
    vectors = read_vectors("vecs.npy", expected_rows=10)   # a read-only np.memmap
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Rows encoded and written per step; also the most work a killed run loses.
DEFAULT_CHUNK_ROWS = 16_384

#: Storage types a vector file may use.
VECTOR_DTYPES = ("float32", "float16")


def check_dtype(dtype: str) -> np.dtype:
    """The numpy dtype for ``dtype``, or a ``ValueError`` listing the valid ones."""
    if dtype not in VECTOR_DTYPES:
        raise ValueError(f"Unknown vector storage dtype {dtype!r}; use one of {', '.join(VECTOR_DTYPES)}.")
    return np.dtype(dtype)


def read_vectors(path: PathLike, expected_rows: Optional[int] = None) -> Optional[np.ndarray]:
    """The finished matrix at ``path``, memory-mapped read-only, or ``None`` if missing, unreadable or of the wrong length."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        logger.warning("Ignoring unreadable vector file %s (%s).", path, exc)
        return None
    if arr.ndim != 2 or (expected_rows is not None and arr.shape[0] != expected_rows):
        logger.warning("Ignoring vector file %s: shape %s for %s rows.", path, arr.shape, expected_rows)
        return None
    return arr


def write_vectors(
    path: PathLike,
    n_rows: int,
    encode: Callable[[int, int], np.ndarray],
    dtype: str = "float32",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Write ``encode(start, stop)`` for consecutive chunks into ``path``; return it memory-mapped.

    Args:
        path: the finished file. Work in progress lives in ``.<name>.partial.npy`` beside it, with
            the number of finished rows in ``.<name>.partial.rows``; both go when the file is complete.
        n_rows: rows in the finished matrix.
        encode: returns rows ``start:stop`` as a 2-D array (any float dtype).
        dtype: ``"float32"`` or ``"float16"`` storage.
        chunk_rows: rows per call of ``encode``.
    """
    np_dtype = check_dtype(dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_name(f".{path.stem}.lock")):
        done_by_another = read_vectors(path, n_rows)
        if done_by_another is not None:
            return done_by_another
        _write(path, n_rows, encode, np_dtype, chunk_rows)
    result = read_vectors(path, n_rows)
    assert result is not None
    return result


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``; no lock where it does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows: one writer per file is the caller's business
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, n_rows: int, encode: Callable[[int, int], np.ndarray], np_dtype: np.dtype,
           chunk_rows: int) -> None:
    """Encode the rows not yet in the partial file, then rename it to ``path``."""
    partial = path.with_name(f".{path.stem}.partial.npy")
    progress = path.with_name(f".{path.stem}.partial.rows")
    out, done = _resume(partial, progress, n_rows, np_dtype)
    if done:
        logger.info("Resuming %s at row %d of %d.", path.name, done, n_rows)
    while done < n_rows:
        stop = min(n_rows, done + chunk_rows)
        rows = np.asarray(encode(done, stop))
        if rows.ndim != 2 or rows.shape[0] != stop - done:
            raise ValueError(f"encode({done}, {stop}) returned shape {rows.shape}; expected {stop - done} rows.")
        if out is None:
            out = np.lib.format.open_memmap(partial, mode="w+", dtype=np_dtype, shape=(n_rows, rows.shape[1]))
        out[done:stop] = rows
        out.flush()
        done = stop
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(str(done))
        os.replace(tmp, progress)
    if out is None:  # zero rows: nothing was encoded, so the width is unknown
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np_dtype, shape=(0, 0))
    del out
    os.replace(partial, path)
    progress.unlink(missing_ok=True)


def _resume(partial: Path, progress: Path, n_rows: int, dtype: np.dtype) -> Tuple[Optional[np.ndarray], int]:
    """The partial matrix opened for writing and its finished row count, or ``(None, 0)`` to start over."""
    if not (partial.is_file() and progress.is_file()):
        return None, 0
    try:
        done = int(progress.read_text().strip())
        out = np.load(partial, mmap_mode="r+", allow_pickle=False)
    except (OSError, ValueError):
        return None, 0
    if out.ndim != 2 or out.shape[0] != n_rows or out.dtype != dtype or not 0 < done <= n_rows:
        return None, 0
    return out, done
