"""Other libraries' progress bars and notices: off for the CLI by default, on with ``--verbose``.

The CLI shows one rich progress display per stage (:mod:`llama_index_bge_finetune.cli.progress`);
without this module, transformers ("Loading weights", "Writing model shards"), huggingface_hub,
datasets and sentence-transformers would print their own tqdm bars and notices between them.

Only the CLI calls :func:`configure_library_output`, once, at the start of a command: it changes
process-wide settings (environment variables, library switches, logger levels), which a library
must not do to its users. The CLI checks its arguments before it loads a model library, so a library
not yet imported is switched through the environment variables it reads at import (they also reach
the processes the run starts, e.g. torchrun workers and Ray actors); one already imported is switched
through its own functions.

The package's own code passes ``show_progress_bar`` to sentence-transformers and its engines (the
CLI passes ``verbose``), and without progress bars the engines send the trainer's log lines to this
package's logger at DEBUG instead of printing them.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Dict, Tuple

logger = logging.getLogger(__name__)

#: Environment variables read at import: huggingface_hub's bars (transformers follows them),
#: datasets' bars, the log levels of transformers and datasets, and tqdm's default for every bar
#: whose caller does not choose (``TQDM_DISABLE``; it applies when tqdm is imported after this).
QUIET_ENVIRONMENT: Dict[str, str] = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",
}

#: Loggers of other libraries that report routine steps at INFO or WARNING: ERROR by default, DEBUG with --verbose.
NOISY_LOGGERS: Tuple[str, ...] = (
    "sentence_transformers", "bm25s", "transformers", "accelerate", "datasets", "huggingface_hub", "httpx",
    "httpcore", "urllib3", "filelock", "pypdf", "torch.distributed", "ray",
)

# The variables this process set, so that a later verbose call in the same process (tests) takes them back.
_set_here: Dict[str, str] = {}


def configure_library_output(verbose: bool) -> None:
    """Turn other libraries' progress bars and notices off (``verbose=False``) or back on (``verbose=True``).

    Off: :data:`QUIET_ENVIRONMENT` is set where the user has not set it, the switches of the libraries
    already imported are called (``transformers.utils.logging.disable_progress_bar`` and
    ``set_verbosity_error``, ``huggingface_hub.utils.disable_progress_bars``,
    ``datasets.disable_progress_bars``), and :data:`NOISY_LOGGERS` log errors only. On: the variables
    this function set are removed, the imported libraries' bars are enabled, and the loggers log at DEBUG.
    Either way the choice holds for the rest of the process.
    """
    if verbose:
        for name, value in list(_set_here.items()):
            if os.environ.get(name) == value:
                del os.environ[name]
            del _set_here[name]
    else:
        for name, value in QUIET_ENVIRONMENT.items():
            if name not in os.environ:
                os.environ[name] = value
                _set_here[name] = value
    _switch_imported_libraries(enable=verbose)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)
    logger.debug("Other libraries' progress bars and notices: %s.", "on" if verbose else "off")


def _switch_imported_libraries(enable: bool) -> None:
    """Call the progress-bar and verbosity switches of the libraries this process has already imported."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub_utils

        (hub_utils.enable_progress_bars if enable else hub_utils.disable_progress_bars)()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if enable:
            hf_logging.enable_progress_bar()
            hf_logging.set_verbosity_warning()
        else:
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        if enable:
            datasets.enable_progress_bars()
            datasets.logging.set_verbosity_warning()
        else:
            datasets.disable_progress_bars()
            datasets.logging.set_verbosity_error()
