"""``python -m llama_index_bge_finetune`` runs the ``bge-finetune`` CLI."""

from llama_index_bge_finetune.cli.main import main

main()
