"""Chat templating with role-aware loss masks.

A conversation is rendered with the tokenizer's own `chat_template` (the Jinja template shipped
with every chat checkpoint, applied through `tokenizer.apply_chat_template`), then tokenized once
with `add_special_tokens=False`, so a BOS the template writes is never added twice.

Loss masks come from rendering prefixes: `messages[:i]` with the generation prompt marks where
assistant turn `i` starts, `messages[:i + 1]` where it ends. Each prefix must be a prefix of the
full render; character spans then map to tokens through the fast tokenizer's offsets. Labels cover
each assistant turn's content and its end-of-turn token (`<|im_end|>`, `<|eot_id|>`, eos, ...),
never the role header nor the whitespace after the end-of-turn. Templates that rewrite earlier
turns (e.g. drop the reasoning of past answers) are not prefix-consistent: for those only the final
assistant turn is learned, with a warning.

`DEFAULT_CHAT_TEMPLATE` is used only when the tokenizer has none (GPT-2 style base models). It is
Zephyr-style, needs no new tokens and ends every turn with the tokenizer's eos token::

    <|system|>\\n{content}{eos}\\n<|user|>\\n{content}{eos}\\n<|assistant|>\\n{content}{eos}\\n

Its generation prompt is `<|assistant|>\\n`; an assistant turn's tool calls follow its content as
`<tool_call>{"name": ..., "arguments": ...}</tool_call>` lines; tool replies are `<|tool|>` turns;
tool schemas open the conversation as a system turn (`alignlab.data.tools.tools_block`).

Tool calls, schemas and replies a template does not render (most render only `content`) are
written into the messages as text first, in the same format (`alignlab.data.tools`), so a call is
never learned as an empty turn. Every entry point (`render`, `encode_prompt` for generation,
`encode_conversation` for SFT, `encode_prompt_response` for DPO and reward models) goes through
that one step and sees the same text. An assistant turn with neither content nor calls is never
learned.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.schema import Message
from alignlab.data.tools import TOOLS_FOOTER, TOOLS_HEADER, ToolSupport, prepare, probe
from alignlab.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Written without whitespace between tags so Jinja's trim settings cannot change the output.
DEFAULT_CHAT_TEMPLATE = (
    "{% if tools %}"
    "{{ '<|system|>\\n' }}"
    "{% if messages[0]['role'] == 'system' and messages[0]['content'] %}"
    "{{ messages[0]['content'] + '\\n\\n' }}"
    "{% endif %}"
    "{{ " + json.dumps(TOOLS_HEADER) + " }}"
    "{% for tool in tools %}{{ (tool | tojson) + '\\n' }}{% endfor %}"
    "{{ " + json.dumps(TOOLS_FOOTER) + " + eos_token + '\\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if not (tools and loop.first and message['role'] == 'system') %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% endif %}"
    "{% for call in message['tool_calls'] | default([], true) %}"
    "{% set fn = call['function'] if call['function'] is defined else call %}"
    "{% if message['content'] or not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ '<tool_call>{\"name\": ' + (fn['name'] | tojson) + ', \"arguments\": ' }}"
    "{% if fn['arguments'] is string %}{{ fn['arguments'] }}"
    "{% else %}{{ fn['arguments'] | tojson }}{% endif %}"
    "{{ '}</tool_call>' }}"
    "{% endfor %}"
    "{{ eos_token + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

MessageLike = Message | Mapping[str, Any]

_FALLBACK_WARNING = (
    "the chat template renders conversation prefixes inconsistently (it rewrites earlier turns), "
    "so only the final assistant turn of such conversations is learned"
)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one rendered conversation and its labels (IGNORE_INDEX where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(
                f"input_ids ({len(self.input_ids)}) and labels ({len(self.labels)}) differ in length"
            )

    def __len__(self) -> int:
        return len(self.input_ids)


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give `tokenizer` DEFAULT_CHAT_TEMPLATE when it has no chat template (saved with it afterwards)."""
    if getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def render(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[MessageLike],
    *,
    add_generation_prompt: bool = False,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The conversation as text, through the tokenizer's chat template (or the default one).

    `tools` (function schemas) go to the template when it renders them, else into a system turn.
    """
    dicts, schemas, _ = _prepared(tokenizer, messages, tools)
    return _render_dicts(tokenizer, dicts, add_generation_prompt, schemas)


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[MessageLike],
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> list[int]:
    """Token ids of `messages` followed by the generation prompt, ready for sampling a reply."""
    text = render(tokenizer, messages, add_generation_prompt=True, tools=tools)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[MessageLike],
    *,
    max_length: int | None = None,
    only_last_turn: bool = False,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> EncodedExample:
    """Tokens of the whole conversation with labels on its assistant turns (SFT).

    `only_last_turn` learns the final assistant turn only. An assistant turn with neither content
    nor tool calls is never learned (a conversation with only such turns gets no labels). Truncation
    to `max_length` keeps the start. Raises DataError when there is no assistant turn or the
    template rejects the roles.
    """
    dicts, schemas, _ = _prepared(tokenizer, messages, tools)
    turns = _assistant_indices(dicts)
    if not turns:
        raise DataError(
            "conversation has no assistant turn, so there is nothing to learn: drop it or add a reply"
        )
    learned = [i for i in (turns[-1:] if only_last_turn else turns) if _has_text(dicts[i])]
    return _encode_turns(tokenizer, dicts, learned, max_length, schemas)


def encode_prompt_response(
    tokenizer: PreTrainedTokenizerBase,
    prompt: Sequence[MessageLike],
    response: Sequence[MessageLike],
    *,
    max_length: int | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> EncodedExample:
    """Tokens of `prompt + response` with labels on the response's assistant turns only (DPO, RM).

    `tools` (function schemas) go to the template as for SFT, so a response is scored in the
    context it was written in.
    """
    dicts, schemas, origin = _prepared(tokenizer, [*prompt, *response], tools)
    turns = [i for i in _assistant_indices(dicts) if origin[i] >= len(prompt)]
    if not turns:
        raise DataError("response has no assistant turn: a response must start with an assistant message")
    return _encode_turns(tokenizer, dicts, turns, max_length, schemas)


def _template_dicts(messages: Sequence[MessageLike]) -> list[dict[str, Any]]:
    return [m.to_template_dict() if isinstance(m, Message) else dict(m) for m in messages]


# What each chat template renders of tool calls, schemas and replies, probed once per template.
_TOOL_SUPPORT: dict[str, ToolSupport] = {}


def tool_support(tokenizer: PreTrainedTokenizerBase) -> ToolSupport:
    """Which tool parts the tokenizer's chat template (or the default one) renders by itself."""
    template = getattr(tokenizer, "chat_template", None)
    key = DEFAULT_CHAT_TEMPLATE if template is None else json.dumps(template, sort_keys=True)
    if key not in _TOOL_SUPPORT:
        _TOOL_SUPPORT[key] = probe(lambda dicts, tools: _render_dicts(tokenizer, dicts, False, tools))
    return _TOOL_SUPPORT[key]


def _prepared(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[MessageLike],
    tools: Sequence[Mapping[str, Any]] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[int]]:
    """Template dicts with the tool parts the template cannot render written as text (`data.tools`)."""
    dicts = _template_dicts(messages)
    support = tool_support(tokenizer)
    present = {
        "tool calls": any(d.get("tool_calls") for d in dicts),
        "tool schemas": bool(tools),
        "tool replies": any(d.get("role") == "tool" for d in dicts),
    }
    written = [part for part in support.missing() if present[part]]
    if written:
        warnings.warn(
            f"the chat template does not render {', '.join(written)}; alignlab writes them into the "
            "conversation as text in its tool format (see alignlab.data.tools), so prompts for this model "
            "must be rendered the same way",
            stacklevel=3,
        )
    return prepare(dicts, tools, support)


def _has_text(d: Mapping[str, Any]) -> bool:
    content = d.get("content")
    return bool(d.get("tool_calls")) or (content.strip() != "" if isinstance(content, str) else bool(content))


def _assistant_indices(dicts: Sequence[Mapping[str, Any]]) -> list[int]:
    return [i for i, d in enumerate(dicts) if d.get("role") == "assistant"]


def _render_dicts(
    tokenizer: PreTrainedTokenizerBase,
    dicts: list[dict[str, Any]],
    add_generation_prompt: bool,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    from jinja2 import TemplateError

    if not dicts:
        raise DataError("cannot render an empty conversation: give at least one message")
    template = None if getattr(tokenizer, "chat_template", None) is not None else DEFAULT_CHAT_TEMPLATE
    try:
        return tokenizer.apply_chat_template(
            dicts,
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
            tools=list(tools) if tools else None,
        )
    except TemplateError as e:
        # Templates reject conversations with `raise_exception` (e.g. no system role): a data problem.
        raise DataError(
            f"the chat template rejected this conversation ({e}): fix its roles or the template"
        ) from e


def _turn_span(
    tokenizer: PreTrainedTokenizerBase,
    dicts: list[dict[str, Any]],
    i: int,
    full: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[int, int] | None:
    """Character span of assistant turn `i` in `full`, or None when prefixes do not line up."""
    if i == 0:
        return None  # no prefix to render, so the header's end cannot be found
    try:
        head = _render_dicts(tokenizer, dicts[:i], True, tools)
        upto = _render_dicts(tokenizer, dicts[: i + 1], False, tools)
    except DataError:
        return None
    if not (full.startswith(head) and full.startswith(upto) and len(head) <= len(upto)):
        return None
    # The newline after an end-of-turn token belongs to the layout, not to the answer.
    return len(head), max(len(upto.rstrip()), len(head))


def _encode_turns(
    tokenizer: PreTrainedTokenizerBase,
    dicts: list[dict[str, Any]],
    turns: list[int],
    max_length: int | None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> EncodedExample:
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    full = _render_dicts(tokenizer, dicts, False, tools)
    spans = [_turn_span(tokenizer, dicts, i, full, tools) for i in turns]
    if spans and spans[-1] is None:
        raise DataError(
            "cannot locate the final assistant turn: the chat template does not render this conversation's "
            "prefixes consistently; use a template whose history renders the same at every turn"
        )
    if any(s is None for s in spans):
        warnings.warn(_FALLBACK_WARNING, stacklevel=3)
        turns, spans = turns[-1:], spans[-1:]
    _check_calls_rendered(dicts, turns, spans, full)
    ids, labels = _tokenize_with_spans(tokenizer, full, [s for s in spans if s is not None])
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return EncodedExample(ids, labels)


def _check_calls_rendered(
    dicts: list[dict[str, Any]], turns: list[int], spans: list[tuple[int, int] | None], full: str
) -> None:
    """A template that rendered calls in the probe must render them in every learned turn too."""
    for i, span in zip(turns, spans, strict=True):
        for call in dicts[i].get("tool_calls") or []:
            name = call.get("function", call).get("name", "")
            if span is not None and name not in full[span[0] : span[1]]:
                raise DataError(
                    f"the chat template drops the call to '{name}' in assistant turn {i + 1}, which would be "
                    "learned without it: use a template that renders tool_calls"
                )


def _tokenize_with_spans(
    tokenizer: PreTrainedTokenizerBase, text: str, spans: list[tuple[int, int]]
) -> tuple[list[int], list[int]]:
    """Token ids of `text` and labels equal to the ids of tokens that overlap a span."""
    if not getattr(tokenizer, "is_fast", False):
        return _tokenize_pieces(tokenizer, text, spans)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    inside = bytearray(len(text) + 1)
    for start, stop in spans:
        inside[start:stop] = b"\x01" * (stop - start)
    ids = list(enc["input_ids"])
    # A token is learned if any of its characters is in a span, so no answer character is dropped
    # when BPE merges across the header boundary.
    labels = [
        tok if 1 in inside[a : max(b, a + 1)] else IGNORE_INDEX
        for tok, (a, b) in zip(ids, enc["offset_mapping"], strict=True)
    ]
    return ids, labels


def _tokenize_pieces(
    tokenizer: PreTrainedTokenizerBase, text: str, spans: list[tuple[int, int]]
) -> tuple[list[int], list[int]]:
    """Slow tokenizers have no offsets: tokenize the text between span boundaries piece by piece."""
    ids: list[int] = []
    labels: list[int] = []
    cuts = [0, *[c for span in spans for c in span], len(text)]
    for k, (a, b) in enumerate(pairwise(cuts)):
        if a == b:
            continue
        piece = list(tokenizer(text[a:b], add_special_tokens=False)["input_ids"])
        ids += piece
        labels += piece if k % 2 == 1 else [IGNORE_INDEX] * len(piece)
    return ids, labels


def fit_to_length(ex: EncodedExample, max_length: int) -> EncodedExample:
    """Cut prompt + response to `max_length` tokens, dropping prompt tokens from the left first.

    Preference training compares responses, so they are kept whole while the prompt can give way
    (as the reference DPO code does); a response longer than `max_length` alone keeps its start.
    """
    over = len(ex) - max_length
    if over <= 0:
        return ex
    start = next((i for i, label in enumerate(ex.labels) if label != IGNORE_INDEX), len(ex))
    cut = min(over, start)
    return EncodedExample(ex.input_ids[cut:][:max_length], ex.labels[cut:][:max_length])


def has_targets(ex: EncodedExample) -> bool:
    """True when some response token is predicted (position 0 never is)."""
    return any(label != IGNORE_INDEX for label in ex.labels[1:])
