"""Built-in open-ended prompts for the win-rate and diversity suites when no prompts file is given:
requests with many good answers, so sampled responses can differ."""

from __future__ import annotations

OPEN_PROMPTS: tuple[str, ...] = (
    "Write a short poem about the sea.",
    "Tell me a joke.",
    "Suggest a name for a black cat.",
    "Give me an idea for a birthday present for my sister.",
    "Describe a sunset in two sentences.",
    "Write the opening line of a mystery novel.",
    "What should I cook for dinner tonight?",
    "Invent a new ice cream flavour and describe it.",
    "Give me a fun fact about animals.",
    "Write a haiku about autumn.",
    "Suggest a weekend activity for a rainy day.",
    "Name a random country and tell me one thing about it.",
    "Write a motivational sentence for someone starting a new job.",
    "Describe an imaginary creature.",
    "Give me a tip for learning a new language.",
    "Write a two-sentence horror story.",
    "Suggest a title for a podcast about cooking.",
    "Explain why the sky is blue in one paragraph.",
    "Write a limerick about a cat.",
    "Recommend a hobby for someone who likes being outdoors.",
)
