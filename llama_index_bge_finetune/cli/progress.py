"""Rich progress bars and logging for the CLI."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from llama_index_bge_finetune.cli.quiet import configure_library_output

console = Console(stderr=True)
"""Progress, logs and messages go to stderr."""
results = Console()
"""Results (the before/after table) go to stdout."""


def setup_logging(verbose: bool) -> None:
    """Our package logs at INFO (DEBUG with --verbose); everything else only warnings.

    Other libraries' progress bars and notices are off, and on with ``--verbose``
    (:func:`llama_index_bge_finetune.cli.quiet.configure_library_output`).
    """
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("llama_index_bge_finetune").setLevel(logging.DEBUG if verbose else logging.INFO)
    configure_library_output(verbose)


@contextmanager
def stage(description: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for one stage; yields ``update(done, total)``."""
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            progress.update(task, completed=done, total=total_)

        yield update
        t = progress.tasks[0]
        if t.total is None:
            progress.update(task, total=1, completed=1)
        else:
            progress.update(task, completed=t.total)
