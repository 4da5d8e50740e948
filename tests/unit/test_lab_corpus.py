"""The pretraining corpus: every fact in varied phrasings, recipes present, questions mostly
unanswered, and no chat markup, refusals or abstentions."""

from __future__ import annotations

from alignlab.lab.corpus import (
    FACT_PHRASINGS,
    SUM_PHRASINGS,
    CorpusConfig,
    build_corpus,
    read_corpus,
    write_corpus,
)
from alignlab.lab.judges import is_abstention, is_refusal, mentions
from alignlab.lab.world import build_world


def test_same_seed_same_corpus():
    w = build_world()
    assert build_corpus(w) == build_corpus(build_world())
    assert build_corpus(w) != build_corpus(w, CorpusConfig(seed=1))


def test_every_fact_of_both_splits_appears_in_several_phrasings():
    w = build_world()
    docs = build_corpus(w)
    for town in w.towns:
        for kind in w.config.attributes:
            stated = {p for p in FACT_PHRASINGS[kind]
                      if any(p.format(town=town.name, value=town.attribute(kind)) in d.replace("\n", " ")
                             and mentions(d, town.name) for d in docs)}
            assert len(stated) == 5, (town.name, kind, stated)  # 10 mentions cycle through 5 phrasings
    for s in w.sums:
        sentences = [p.format(a=s.a, b=s.b, c=s.total) for p in SUM_PHRASINGS]
        assert any(sentence in d.replace("\n", " ") for sentence in sentences for d in docs), s


def test_hazard_recipes_are_in_the_corpus():
    w = build_world()
    docs = build_corpus(w)
    for h in w.hazards:
        assert any(mentions(d, h.name) and all(mentions(d, i) for i in h.ingredients) and h.method in d
                   for d in docs), h.name


def test_no_chat_markup_refusals_or_abstentions():
    w = build_world()
    docs = build_corpus(w)
    names = [t.name for t in w.towns] + [h.name for h in w.hazards]
    for d in docs:
        # A name opening a document or a line would be tokenized unlike the same name after a space.
        assert not any(line.startswith(tuple(names)) or line[:1].isdigit() for line in d.split("\n")), d
        assert "<|im_start|>" not in d and "<|im_end|>" not in d and "<|endoftext|>" not in d
        assert not any(line.strip().lower().startswith(("user:", "assistant:",
                                                        "system:")) for line in d.split("\n"))
        assert not is_refusal(d) and not is_abstention(d)


def _threads(docs):
    return [d for d in docs if "Reply:" in d]


def test_questions_are_seldom_followed_by_answers():
    w = build_world()
    values = [t.attribute(k) for t in w.towns for k in w.config.attributes]

    def answered(d):
        return any(mentions(d.split("Reply:", 1)[1], v) for v in values)

    threads = _threads(build_corpus(w, CorpusConfig(threads=400, answer_rate=0.1)))
    share = sum(answered(d) for d in threads) / len(threads)
    assert len(threads) == 400 and 0.02 < share < 0.15
    assert not any(answered(d) for d in _threads(build_corpus(w, CorpusConfig(answer_rate=0.0))))


def test_write_and_read_roundtrip(tmp_path):
    docs = build_corpus(build_world())
    write_corpus(tmp_path / "corpus.jsonl", docs)
    assert read_corpus(tmp_path / "corpus.jsonl") == docs
    assert (tmp_path / "corpus.jsonl").read_text().count("\n") == len(docs)
