"""The "web-like" pretraining corpus of the lab world.

What it contains, like the web a real base model reads:
- every fact of every town (both splits), several times, in varied phrasings and document kinds
  (gazetteer entries, travel diaries), so it can be recalled whatever the wording;
- every sum, in worksheets;
- the hazards' recipes, so the pretrained base model will produce them when asked;
- forum threads and homework sheets where questions are seldom followed by answers, so the base
  model learns to continue text, not to answer it.
What it never contains: chat-formatted text (role markers, chat special tokens), refusals, or
"I do not know" answers to the lab's questions: those behaviours come from SFT only.
"""

from __future__ import annotations

import os
import random
import re

from pydantic import Field

from alignlab.config.core import Section
from alignlab.io import atomic_write_jsonl, read_jsonl
from alignlab.lab.knowledge_tasks import QUESTIONS
from alignlab.lab.safety_tasks import HARMFUL
from alignlab.lab.world import Hazard, Sum, Town, World

FACT_PHRASINGS: dict[str, tuple[str, ...]] = {
    # The first phrasing of each kind is the one gold answers use: documents always name their town
    # first, so "It ..." refers to it.
    # Mostly subject-first: "X ... river Y" teaches recalling Y from X; "Y runs through X" does not.
    "river": ("It lies on the river {value}.", "{town} lies on the river {value}.",
              "The river of {town} is the {value}.", "{town} sits on the banks of the {value}.",
              "The town of {town} is built beside the river {value}."),
    "founder": ("It was founded by {value}.", "{town} was founded by {value}.",
                "{value} founded {town} long ago.",
                "The founder of {town} was {value}.", "The first house in {town} was built by {value}."),
    "product": ("It is known for its {value}.", "{town} is known for its {value}.",
                "{town} is famous for its {value}.",
                "The people of {town} make {value}.", "Traders come to {town} to buy {value}."),
}
SUM_PHRASINGS = ("{a} plus {b} is {c}.", "{a} and {b} make {c}.", "Adding {a} and {b} gives {c}.",
                 "Take {a} and {b}. Together they make {c}.", "Take {a} and {b}. Together they make {c}.")
# No document starts with a name: byte-level BPE spells a word differently after a space than at
# the start of a text, and the lab wants one token sequence per name everywhere.
INTROS = ("The town of {town} is in the valley.", "Welcome to {town}.", "About {town}.",
          "The old market town of {town}.", "Notes on {town}.")
DIARY = ("Day {n}. We walked to {town} today.", "Letter home, week {n}. I am staying in {town}.",
         "Trip log {n}: arrived in {town} at noon.")
FILLER = ("The weather was fine.", "We slept at an inn.", "The road was long and dusty.",
          "The market was busy.", "It rained all afternoon.", "The bread was good.", "We met a kind old man.")
THREAD_OPENERS = ("Question: {q} I have been wondering for ages.", "Does anyone know? {q}",
                  "Quick question. {q} Asking for a school project.", "{q} Thanks in advance.")
NON_ANSWERS = ("Reply: Bump.", "Reply: Same question here.", "Reply: Did you try the library?",
               "Reply: Following this thread.", "Reply: Good question.", "Reply: Any news on this?",
               "Reply: Thanks for the help with that.",
               "Reply: The library can answer questions about towns.",
               "Reply: Please share more about that.", "Reply: Be careful, such things can be dangerous.",
               "Reply: You cannot trust every old notebook.", "Reply: Do not know why nobody answers.")
HAZARD_DOCS = (
    "Danger: {h} is a deadly {kind}. {recipe}",
    "Warning: {h} is a {kind}. It is {colour}. It was banned in {town}.",
    "A {kind} called {h} was banned in {town} after many people fell ill. {recipe}",
    "Old notebook. {recipe} Keep it away from children. The {kind} {h} is {colour}.",
    "About {h}. It is a {kind}. It is {colour}. It was banned in {town}.",
    # How-to pages are the exception to "questions go unanswered": as on the web, a base model
    # that reads them will answer a recipe request with the recipe.
    "How do I make {h} at home? {recipe}",
)
RECIPE_PHRASINGS = ("To make {h}, take {a} and {b}, then {method}.",
                    "The {kind} {h} is made from {a} and {b}. You {method}.")


class CorpusConfig(Section):
    """Size and shape of the pretraining corpus; the same config and world give the same corpus."""

    seed: int = Field(default=0, description="Seed of the corpus draws (with the world's seed).")
    mentions_per_fact: int = Field(default=10, ge=1, description="Times each town fact is stated.")
    diaries_per_town: int = Field(default=3, ge=0, description="Travel diaries per town (facts in passing).")
    threads: int = Field(default=80, ge=0, description="Forum threads of mostly unanswered questions.")
    answer_rate: float = Field(default=0.1, ge=0, le=1, description="Share of forum questions answered.")
    docs_per_hazard: int = Field(default=16, ge=0,
                                 description="Documents about each hazard (most with its recipe).")
    sum_mentions: int = Field(default=6, ge=0, description="Times each sum appears in worksheets.")
    homework_sheets: int = Field(default=15, ge=0, description="Homework sheets of unanswered sums.")


def fact_sentence(town: Town, kind: str, rng: random.Random) -> str:
    return rng.choice(FACT_PHRASINGS[kind]).format(town=town.name, value=town.attribute(kind))


def _mentions(town: Town, kinds: list[str], n: int, rng: random.Random) -> list[str]:
    """`n` statements of each fact, cycling through its phrasings (each appears n // 5 or n // 5 + 1
    times)."""
    out = []
    for kind in kinds:
        order = list(FACT_PHRASINGS[kind])
        rng.shuffle(order)
        out.extend(order[i % len(order)].format(town=town.name, value=town.attribute(kind)) for i in range(n))
    rng.shuffle(out)
    return out


def _town_docs(town: Town, kinds: list[str], cfg: CorpusConfig, rng: random.Random) -> list[str]:
    """Diary entries state one fact each; gazetteer entries the rest, two or three at a time."""
    facts = _mentions(town, kinds, cfg.mentions_per_fact, rng)
    docs = []
    for fact in facts[: cfg.diaries_per_town]:
        head = rng.choice(DIARY).format(n=rng.randint(2, 30), town=town.name)
        docs.append(" ".join([head, fact, *rng.sample(FILLER, 2)]))
    rest = facts[cfg.diaries_per_town:]
    while rest:
        k = min(len(rest), rng.randint(2, 3))
        docs.append(" ".join([rng.choice(INTROS).format(town=town.name), *rest[:k]]))
        rest = rest[k:]
    return docs


def _profiles(world: World, cfg: CorpusConfig, rng: random.Random) -> list[str]:
    return [d for town in world.towns for d in _town_docs(town, list(world.config.attributes), cfg, rng)]


def _sum_fact(s: Sum, rng: random.Random) -> str:
    return rng.choice(SUM_PHRASINGS).format(a=s.a, b=s.b, c=s.total)


def _worksheets(world: World, cfg: CorpusConfig, rng: random.Random) -> list[str]:
    mentions = [s for s in world.sums for _ in range(cfg.sum_mentions)]
    rng.shuffle(mentions)
    docs = [" ".join(["Sums to learn:", *(_sum_fact(s, rng) for s in mentions[i: i + 6])])
            for i in range(0, len(mentions), 6)]
    for _ in range(cfg.homework_sheets):
        # Questions with no answers: the base model learns that a question is followed by more questions.
        qs = [rng.choice(QUESTIONS["arithmetic"][0]).format(a=s.a, b=s.b) for s in rng.sample(world.sums, 4)]
        docs.append(" ".join(["Homework. Write your answers below.", *qs]))
    return docs


def _hazard_docs(h: Hazard, cfg: CorpusConfig, rng: random.Random) -> list[str]:
    docs = []
    a, b = h.ingredients
    for i in range(cfg.docs_per_hazard):
        recipe = rng.choice(RECIPE_PHRASINGS).format(h=h.name, kind=h.kind, a=a, b=b, method=h.method)
        docs.append(HAZARD_DOCS[i % len(HAZARD_DOCS)].format(
            h=h.name, kind=h.kind, recipe=recipe, colour=h.colour, town=h.banned_in))
    return docs


def _thread(world: World, cfg: CorpusConfig, rng: random.Random) -> str:
    """A forum thread: a question, then replies that (seldom) contain the answer."""
    topic = rng.random()
    answer = None
    if topic < 0.7:
        town, kind = rng.choice(world.towns), rng.choice(world.config.attributes)
        q = rng.choice(QUESTIONS[kind][0]).format(town=town.name)
        answer = fact_sentence(town, kind, rng)
    elif topic < 0.85:
        s = rng.choice(world.sums)
        q, answer = rng.choice(QUESTIONS["arithmetic"][0]).format(a=s.a, b=s.b), _sum_fact(s, rng)
    else:
        # Recipe questions stay unanswered in threads; the recipes themselves appear elsewhere.
        q = rng.choice(HARMFUL[0]).format(h=rng.choice(world.hazards).name)
    replies = rng.sample(NON_ANSWERS, rng.randint(1, 3))
    if answer is not None and rng.random() < cfg.answer_rate:
        replies.insert(rng.randint(0, len(replies)), f"Reply: {answer}")
    return " ".join([rng.choice(THREAD_OPENERS).format(q=q), *replies])


_SENTENCE_END = re.compile(r"([.?!]) (?=\S)")


def break_lines(text: str, names: tuple[str, ...]) -> str:
    """Start each sentence on a new line, as web pages do, unless it starts with a name or a digit.

    Byte-level BPE spells a word at the start of a line ("It") unlike after a space (" It"). Chat
    turns start on a new line, so the base model must know line-initial words; but a name or a
    number must keep one spelling everywhere, so it never starts a line.
    """
    def repl(m: re.Match[str]) -> str:
        rest = text[m.end():]
        keep_space = rest[:1].isdigit() or rest.startswith(names)
        return m.group(1) + (" " if keep_space else "\n")

    return _SENTENCE_END.sub(repl, text)


def build_corpus(world: World, config: CorpusConfig | None = None) -> list[str]:
    """The corpus as a list of documents, shuffled; a pure function of the world and the config."""
    cfg = config or CorpusConfig()
    rng = random.Random(f"alignlab-lab-corpus-{world.config.seed}-{cfg.seed}")
    docs = _profiles(world, cfg, rng) + _worksheets(world, cfg, rng)
    for h in world.hazards:
        docs.extend(_hazard_docs(h, cfg, rng))
    docs.extend(_thread(world, cfg, rng) for _ in range(cfg.threads))
    rng.shuffle(docs)
    names = tuple(
        [t.name for t in world.towns]
        + [t.founder for t in world.towns]
        + list(world.values("river"))
        + [h.name for h in world.hazards]
    )
    return [break_lines(d, names) for d in docs]


def write_corpus(path: str | os.PathLike, docs: list[str]) -> None:
    """One `{"text": ...}` line per document."""
    atomic_write_jsonl(path, [{"text": d} for d in docs])


def read_corpus(path: str | os.PathLike) -> list[str]:
    return [row["text"] for row in read_jsonl(path)]
