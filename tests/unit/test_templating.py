"""Chat templating: the learned (unmasked) tokens decode to exactly the assistant turns.

The templates below follow the ones shipped with Qwen2.5-Instruct (ChatML with a default system
prompt and tool calls), Meta-Llama-3-Instruct and Gemma (no system role), written out here so
nothing is downloaded. QWEN3_STYLE drops the reasoning of earlier answers, as Qwen3 does, and so
is not prefix-consistent.
"""

from __future__ import annotations

import warnings

import pytest

from alignlab.data.schema import Message, ToolCall, assistant, system, user
from alignlab.data.templating import (
    DEFAULT_CHAT_TEMPLATE,
    EncodedExample,
    encode_conversation,
    encode_prompt,
    encode_prompt_response,
    ensure_chat_template,
    render,
)
from alignlab.errors import DataError
from alignlab.losses.sft import IGNORE_INDEX

# Qwen2.5's published chat template, byte for byte: its long lines are kept as they are.
QWEN25_TEMPLATE = r"""{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""  # noqa: E501

LLAMA3_TEMPLATE = (
    r"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    r"'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    r"'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    r"{{ content }}{% endfor %}{% if add_generation_prompt %}"
    r"{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Gemma 3 merges a system message into the first user turn.
GEMMA_MERGE_TEMPLATE = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim -}}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}
"""

# Gemma 1 / 2 reject a system message outright.
GEMMA_STRICT_TEMPLATE = (
    r"{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    r"{{ raise_exception('System role not supported') }}{% endif %}"
    r"{% for message in messages %}"
    r"{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    r"{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Qwen3-like: earlier answers lose their reasoning, so prefixes of the history are re-rendered.
QWEN3_STYLE_TEMPLATE = r"""{%- for message in messages %}
    {%- if message.role == 'assistant' %}
        {%- set content = message.content %}
        {%- if not loop.last and '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# name -> (template, end-of-turn text); None is "no template": the default one applies
TEMPLATES = {
    "qwen2.5": (QWEN25_TEMPLATE, "<|im_end|>"),
    "llama3": (LLAMA3_TEMPLATE, "<|eot_id|>"),
    "gemma": (GEMMA_MERGE_TEMPLATE, "<end_of_turn>"),
    "default": (None, "<|endoftext|>"),
}

CHAT = [
    user("Hello!"),
    assistant("Hi there. How can I help you?"),
    user("What is the capital of France?"),
    assistant("The capital of France is Paris."),
]


def learned_texts(tokenizer, ex: EncodedExample) -> list[str]:
    """Decode each maximal run of learned tokens, checking labels equal the inputs there."""
    runs: list[list[int]] = []
    prev_learned = False
    for tok, lab in zip(ex.input_ids, ex.labels, strict=True):
        learned = lab != IGNORE_INDEX
        if learned:
            assert lab == tok
            if not prev_learned:
                runs.append([])
            runs[-1].append(lab)
        prev_learned = learned
    return [tokenizer.decode(r, skip_special_tokens=False) for r in runs]


def with_template(tokenizer, template: str | None):
    tokenizer.chat_template = template
    return tokenizer


def test_default_template_renders_documented_layout(tiny_tokenizer):
    msgs = [system("Be brief."), user("Hi"), assistant("Hello.")]
    text = render(tiny_tokenizer, msgs, add_generation_prompt=False)
    assert text == (
        "<|system|>\nBe brief.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\nHello.<|endoftext|>\n"
    )
    assert render(tiny_tokenizer, msgs[:2], add_generation_prompt=True).endswith(
        "<|endoftext|>\n<|assistant|>\n"
    )


def test_ensure_chat_template_sets_default_only_when_missing(tiny_tokenizer):
    ensure_chat_template(tiny_tokenizer)
    assert tiny_tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    tiny_tokenizer.chat_template = LLAMA3_TEMPLATE
    ensure_chat_template(tiny_tokenizer)
    assert tiny_tokenizer.chat_template == LLAMA3_TEMPLATE


@pytest.mark.parametrize("with_system", [False, True])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_multi_turn_labels_are_exactly_assistant_turns(tiny_tokenizer, name, with_system):
    template, eot = TEMPLATES[name]
    tok = with_template(tiny_tokenizer, template)
    msgs = [system("You are terse."), *CHAT] if with_system else CHAT
    ex = encode_conversation(tok, msgs)
    assert learned_texts(tok, ex) == [
        "Hi there. How can I help you?" + eot,
        "The capital of France is Paris." + eot,
    ]
    # The tokens are the full render, tokenized once.
    assert tok.decode(ex.input_ids, skip_special_tokens=False) == render(tok, msgs)


def test_qwen_default_system_prompt_is_rendered_and_not_learned(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN25_TEMPLATE)
    ex = encode_conversation(tok, CHAT[:2])
    text = tok.decode(ex.input_ids, skip_special_tokens=False)
    assert text.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert learned_texts(tok, ex) == ["Hi there. How can I help you?<|im_end|>"]
    # The whitespace after end-of-turn is not learned: the last token is "\n" and masked.
    assert tok.decode(ex.input_ids[-1:]) == "\n" and ex.labels[-1] == IGNORE_INDEX


def test_llama3_bos_is_not_added_twice(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, LLAMA3_TEMPLATE)
    ex = encode_conversation(tok, CHAT)
    assert ex.input_ids[0] == tok.bos_token_id
    assert ex.input_ids.count(tok.bos_token_id) == 1
    assert encode_prompt(tok, CHAT[:1]).count(tok.bos_token_id) == 1


def test_gemma_merges_system_into_first_user_turn(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, GEMMA_MERGE_TEMPLATE)
    msgs = [system("Be kind."), *CHAT]
    assert render(tok, msgs[:2]).startswith(
        "<|begin_of_text|><start_of_turn>user\nBe kind.\n\nHello!<end_of_turn>\n"
    )
    assert learned_texts(tok, encode_conversation(tok, msgs)) == [
        "Hi there. How can I help you?<end_of_turn>",
        "The capital of France is Paris.<end_of_turn>",
    ]


def test_template_without_system_role_raises_data_error(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, GEMMA_STRICT_TEMPLATE)
    assert learned_texts(tok, encode_conversation(tok, CHAT[:2])) == [
        "Hi there. How can I help you?<end_of_turn>"
    ]
    with pytest.raises(DataError, match="System role not supported"):
        encode_conversation(tok, [system("Be kind."), *CHAT])


TOOL_CHAT = [
    user("Weather in Paris?"),
    Message(
        role="assistant",
        content="",
        tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})],
    ),
    Message(role="tool", content="sunny, 21 C", tool_call_id="c1"),
    assistant("It is sunny and 21 degrees in Paris."),
]


def test_tool_calls_and_tool_turns_chatml(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN25_TEMPLATE)
    ex = encode_conversation(tok, TOOL_CHAT)
    assert "<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>" in render(
        tok, TOOL_CHAT
    )
    assert learned_texts(tok, ex) == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        "It is sunny and 21 degrees in Paris.<|im_end|>",
    ]


TOOLS_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\nTools:' }}{%- for t in tools %}{{- ' ' + t.function.name }}"
    "{%- endfor %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_tool_schemas_reach_the_template_and_are_not_learned(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, TOOLS_TEMPLATE)
    chat = [Message(role="user", content="Weather?"), Message(role="assistant", content="Sunny.")]
    assert render(tok, chat, tools=[WEATHER_TOOL]).startswith(
        "<|im_start|>system\nTools: get_weather<|im_end|>"
    )
    ex = encode_conversation(tok, chat, tools=[WEATHER_TOOL])
    assert "get_weather" in tok.decode(ex.input_ids)
    assert learned_texts(tok, ex) == ["Sunny.<|im_end|>"]
    assert tok.decode(encode_prompt(tok, chat[:1], tools=[WEATHER_TOOL])).endswith("<|im_start|>assistant\n")


def test_preference_encoding_renders_the_pairs_tool_schemas(tiny_tokenizer, tmp_path):
    from alignlab.config import DataConfig
    from alignlab.data.preference import encode_pair
    from alignlab.data.schema import PreferencePair

    tok = with_template(tiny_tokenizer, TOOLS_TEMPLATE)
    prompt = [Message(role="user", content="Weather?")]
    ex = encode_prompt_response(
        tok, prompt, [Message(role="assistant", content="Sunny.")], tools=[WEATHER_TOOL]
    )
    assert tok.decode(ex.input_ids).startswith("<|im_start|>system\nTools: get_weather<|im_end|>")
    assert learned_texts(tok, ex) == ["Sunny.<|im_end|>"]
    pair = PreferencePair(prompt=prompt, chosen=[assistant("Sunny.")], rejected=[assistant("No idea.")],
                          metadata={"tools": [WEATHER_TOOL]})
    encoded = encode_pair(tok, pair, DataConfig(path="unused.jsonl"), None)
    assert all("get_weather" in tok.decode(side.input_ids) for side in (encoded.chosen, encoded.rejected))


def test_tool_calls_and_tool_turns_default_template(tiny_tokenizer):
    msgs = [
        *TOOL_CHAT[:1],
        Message(
            role="assistant",
            content="Let me check.",
            tool_calls=[
                ToolCall(name="get_weather", arguments={"city": "Paris"}),
                ToolCall(name="get_time", arguments='{"tz": "CET"}'),
            ],
        ),
        *TOOL_CHAT[2:],
    ]
    ex = encode_conversation(tiny_tokenizer, msgs)
    assert "<|tool|>\nsunny, 21 C<|endoftext|>\n<|assistant|>\n" in render(tiny_tokenizer, msgs)
    assert learned_texts(tiny_tokenizer, ex) == [
        'Let me check.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call><|endoftext|>',
        "It is sunny and 21 degrees in Paris.<|endoftext|>",
    ]


def test_only_last_turn(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN25_TEMPLATE)
    ex = encode_conversation(tok, CHAT, only_last_turn=True)
    assert learned_texts(tok, ex) == ["The capital of France is Paris.<|im_end|>"]
    assert ex.input_ids == encode_conversation(tok, CHAT).input_ids


def test_truncation_keeps_the_start(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN25_TEMPLATE)
    full = encode_conversation(tok, CHAT)
    cut = len(full) - 5  # inside the last answer
    ex = encode_conversation(tok, CHAT, max_length=cut)
    assert ex.input_ids == full.input_ids[:cut] and ex.labels == full.labels[:cut]
    assert len(ex) == cut and ex.labels[-1] != IGNORE_INDEX


def test_non_prefix_consistent_template_falls_back_to_final_turn(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN3_STYLE_TEMPLATE)
    msgs = [
        user("2+2?"),
        assistant("<think>\nadd them\n</think>\n4"),
        user("3+3?"),
        assistant("<think>\nadd again\n</think>\n6"),
    ]
    with pytest.warns(UserWarning, match="only the final assistant turn"):
        ex = encode_conversation(tok, msgs)
    assert "add them" not in render(tok, msgs)  # the earlier reasoning is dropped by the template
    assert learned_texts(tok, ex) == ["<think>\nadd again\n</think>\n6<|im_end|>"]
    # A single answer is prefix-consistent: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert learned_texts(tok, encode_conversation(tok, msgs[:2])) == [
            "<think>\nadd them\n</think>\n4<|im_end|>"
        ]


def test_conversation_without_assistant_turn_raises(tiny_tokenizer):
    with pytest.raises(DataError, match="no assistant turn"):
        encode_conversation(tiny_tokenizer, [system("x"), user("Hello!")])


def test_prompt_response_labels_only_the_response(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, QWEN25_TEMPLATE)
    prompt = CHAT[:3]  # contains an earlier assistant turn, which must not be learned
    response = [assistant("Paris.")]
    ex = encode_prompt_response(tok, prompt, response)
    prompt_ids = encode_prompt(tok, prompt)
    assert ex.input_ids[: len(prompt_ids)] == prompt_ids
    assert all(lab == IGNORE_INDEX for lab in ex.labels[: len(prompt_ids)])
    assert ex.labels[len(prompt_ids)] != IGNORE_INDEX
    assert learned_texts(tok, ex) == ["Paris.<|im_end|>"]
    assert tok.decode(prompt_ids, skip_special_tokens=False).endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    with pytest.raises(DataError, match="no assistant turn"):
        encode_prompt_response(tok, prompt, [user("not a response")])


class _SlowTokenizer:
    """A tokenizer without offset mapping (like the Python 'slow' tokenizers)."""

    is_fast = False

    def __init__(self, fast):
        self._fast = fast
        self.chat_template = fast.chat_template

    def apply_chat_template(self, *args, **kwargs):
        return self._fast.apply_chat_template(*args, **kwargs)

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": self._fast(text, add_special_tokens=add_special_tokens)["input_ids"]}


def test_slow_tokenizer_path_matches_offsets_path(tiny_tokenizer):
    for template in (QWEN25_TEMPLATE, None):
        tok = with_template(tiny_tokenizer, template)
        fast = encode_conversation(tok, [system("Be brief."), *CHAT])
        slow = encode_conversation(_SlowTokenizer(tok), [system("Be brief."), *CHAT])
        assert slow == fast
