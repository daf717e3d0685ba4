"""The answer parser: every layout LLMs use, and what it must drop."""

from __future__ import annotations

import pytest

from llama_index_bge_finetune.generation import parse_questions

PASSAGE = "The garbage collector frees reference cycles. It runs when allocation thresholds are exceeded."
EXPECTED = ["What does the garbage collector free?", "When does the collector run?"]


@pytest.mark.parametrize(
    "answer",
    [
        "1. What does the garbage collector free?\n2. When does the collector run?",
        "1) What does the garbage collector free?\n2) When does the collector run?",
        "- What does the garbage collector free?\n* When does the collector run?",
        "Q1: What does the garbage collector free?\nQ2: When does the collector run?",
        "**Question 1:** What does the garbage collector free?\n**Question 2:** When does the collector run?",
        "1. **What does the garbage collector free?**\n2. **When does the collector run?**",
        '["What does the garbage collector free?", "When does the collector run?"]',
        '```json\n{"questions": ["What does the garbage collector free?", "When does the collector run?"]}\n```',
        '[{"question": "What does the garbage collector free?"}, {"question": "When does the collector run?"}]',
        "Here are 2 questions based on the context:\n\n1. What does the garbage collector free?\n2. When does the collector run?",
        "Sure! Here are two questions:\nWhat does the garbage collector free? When does the collector run?",
        "What does the garbage collector free? 2. When does the collector run?",
    ],
)
def test_layouts_parse_to_the_same_questions(answer):
    assert parse_questions(answer, passage=PASSAGE) == EXPECTED


def test_drops_non_questions_duplicates_and_verbatim_copies():
    answer = (
        "Here are some questions:\n"
        "1. What does the garbage collector free?\n"
        "2. What does the garbage collector free ?\n"  # near-duplicate
        "3. what does the Garbage Collector free exactly?\n"  # near-duplicate (Jaccard >= 0.8)
        "4. It runs when allocation thresholds are exceeded?\n"  # copies the passage
        "5. This is a statement about memory.\n"
        "6. Explain the collector.\n"
        "7. Why?\n"  # too short
        "8. How are reference cycles found\n"  # interrogative without '?': kept with one
    )
    assert parse_questions(answer, passage=PASSAGE) == [
        "What does the garbage collector free?",
        "How are reference cycles found?",
    ]


def test_limit_and_malformed():
    many = "\n".join(f"{i}. What is topic number {i} about?" for i in range(1, 6))
    assert len(parse_questions(many, limit=2)) == 2
    assert parse_questions("I'm sorry, but I cannot comply with that request") == []
    assert parse_questions("") == []
    assert parse_questions('["What is unterminated JSON?", ') == ["What is unterminated JSON?"]


def test_keeps_identifiers_with_underscores():
    assert parse_questions("1. What does __init__ return in a class?") == ["What does __init__ return in a class?"]
