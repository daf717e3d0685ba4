"""Build a tiny random BERT sentence-transformers model offline, for fast unit tests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_model(out_dir: Path, vocab_size: int = 2000) -> Path:
    """Write a 2-layer, 32-dim BERT with a WordPiece tokenizer built from CPython's docs.

    The folder is a sentence-transformers model (mean pooling) that ``SentenceTransformer``
    and ``HuggingFaceEmbedding`` load. Its weights are random, so it only tests plumbing; they and
    the vocabulary are the same in every process, so every test session tests the same model.
    """
    from pydoc_data.topics import topics
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast

    import torch

    torch.manual_seed(0)
    out_dir = Path(out_dir)
    hf_dir = out_dir / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok = Tokenizer(WordPiece(vocab=_vocab(topics.values(), normalizer, pre_tokenizer, vocab_size), unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    fast.save_pretrained(hf_dir)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(hf_dir)

    word = models.Transformer(str(hf_dir), max_seq_length=128)
    pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    model_dir = out_dir / "tiny-bert"
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(model_dir))
    return model_dir


def _vocab(texts: Iterable[str], normalizer: Any, pre_tokenizer: Any, size: int) -> Dict[str, int]:
    """Special tokens, every character (word-initial and ``##`` continuation), then the most frequent words.

    Ties are broken by the word itself: unlike the ``tokenizers`` trainer, whose ids follow hash-map order
    and so differ between processes, the result is the same everywhere.
    """
    words: Counter = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    tokens = SPECIALS + chars + [f"##{c}" for c in chars]
    taken = set(tokens)
    tokens += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if w not in taken][: max(0, size - len(tokens))]
    return {t: i for i, t in enumerate(tokens)}
