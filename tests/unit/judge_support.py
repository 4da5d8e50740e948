"""Scripted judges for the AI-labeller tests: they read the (A) / (B) options off the comparison prompt."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from alignlab.generation.base import Completion

_OPTION = re.compile(r"^\((A|B)\) (.*)$", re.MULTILINE)


def options_of(prompt) -> tuple[str, str]:
    found = dict(_OPTION.findall(prompt[-1].content))
    return found["A"], found["B"]


@dataclass(frozen=True)
class LogprobCompletion(Completion):
    """A completion carrying OpenAI-style `logprobs` (what an endpoint asked for them returns)."""

    top_logprobs: Any = None


class TableJudge:
    """Replies looked up by the text shown as (A); `default` for anything else."""

    def __init__(self, replies: dict[str, str | Completion], default: str = "Answer: A"):
        self.replies, self.default = replies, default
        self.prompts: list = []

    def generate(self, prompts, params):
        self.prompts.extend(prompts)
        out = []
        for p in prompts:
            reply = self.replies.get(options_of(p)[0], self.default)
            out.append([reply if isinstance(reply, Completion) else Completion(reply)])
        return out


class LengthJudge:
    """Prefers the longer response, plus `bias` in favour of (A): P(A) = sigmoid(len(A) - len(B) + bias).

    With `logprobs` its completions carry that distribution as OpenAI top_logprobs at the answer token.
    """

    def __init__(self, bias: float = 0.0, logprobs: bool = False):
        self.bias, self.logprobs = bias, logprobs

    def p_a(self, a: str, b: str) -> float:
        return 1 / (1 + math.exp(-(len(a) - len(b) + self.bias)))

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            pa = self.p_a(*options_of(p))
            answer = "A" if pa >= 0.5 else "B"
            if not self.logprobs:
                out.append([Completion(f"Answer: {answer}")])
                continue
            top = [{"token": " A", "logprob": math.log(pa)}, {"token": " B", "logprob": math.log(1 - pa)}]
            content = [{"token": "Answer", "logprob": 0.0, "top_logprobs": []},
                       {"token": ":", "logprob": 0.0, "top_logprobs": []},
                       {"token": f" {answer}", "logprob": math.log(max(pa, 1 - pa)), "top_logprobs": top}]
            out.append([LogprobCompletion(f"Answer: {answer}", top_logprobs={"content": content})])
        return out
