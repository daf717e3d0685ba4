"""The ``bge-finetune`` command line: a thin layer over :mod:`llama_index_bge_finetune.pipeline`."""
