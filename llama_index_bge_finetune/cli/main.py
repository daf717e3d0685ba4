"""Entry point of ``bge-finetune``: registers the subcommands and turns errors into one paragraph."""

from __future__ import annotations

import os
import sys

import typer

from llama_index_bge_finetune.errors import BgeFinetuneError

app = typer.Typer(
    name="bge-finetune",
    help="Fine-tune an embedding model on your documents and measure the retrieval gain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _register() -> None:
    from llama_index_bge_finetune.cli import evaluate, generate, run, train

    app.command("run", help=run.RUN_HELP)(run.run)
    app.command("demo", help=run.DEMO_HELP)(run.demo)
    app.command("generate", help=generate.HELP)(generate.generate)
    app.command("train", help=train.HELP)(train.train)
    app.command("evaluate", help=evaluate.HELP)(evaluate.evaluate)


_register()


def main() -> None:
    """Run the CLI; a known error prints its message and exits 2, Ctrl-C exits 130."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llama_index_bge_finetune.cli.progress import console

    try:
        app()
    except BgeFinetuneError as exc:
        from rich.markup import escape

        # escaped: messages name extras such as "[scale]", which rich would take for markup
        console.print(f"[bold red]Error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("Interrupted. Rerun the same command to resume: finished work is kept.")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
