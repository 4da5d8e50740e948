"""Tool calls, tool schemas and tool replies reach the model whatever the chat template renders.

CHATML_CONTENT_ONLY is the shape of most ChatML templates (and of the one the 135M chat model that
showed the problem ships): it renders `content` only, so an assistant turn that holds just a call
would be learned as a bare `<|im_end|>`. QWEN25_TOOLS follows Qwen2.5-Instruct's template (the
Hermes tool format): a `# Tools` block in the system turn, `<tool_call>` lines, tool replies as
`<tool_response>` user turns. Both are written out here so nothing is downloaded.
"""

from __future__ import annotations

import json
import warnings

import pytest

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.readers import read_conversations
from alignlab.data.schema import Message, PreferencePair, ToolCall, assistant, system, user
from alignlab.data.templating import (
    DEFAULT_CHAT_TEMPLATE,
    EncodedExample,
    encode_conversation,
    encode_prompt,
    encode_prompt_response,
    has_targets,
    render,
)

CHATML_CONTENT_ONLY = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen2.5's published chat template with tools, byte for byte: its long lines are kept as they are.
QWEN25_TOOLS = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- elif messages[0]['role'] == 'system' %}
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

# Renders calls (Hermes style) but silently skips any role other than system, user and assistant,
# as several instruct templates do: a tool reply would vanish.
THREE_ROLES_ONLY = (
    "{% for m in messages %}{% if m['role'] in ['system', 'user', 'assistant'] %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
    "{% for c in m['tool_calls'] | default([], true) %}"
    "{{ '\\n<tool_call>\\n' + "
    "({'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson)"
    " + '\\n</tool_call>' }}{% endfor %}"
    "{{ '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# The default template's layout, rendering only content: what the fallback must turn into exactly
# what DEFAULT_CHAT_TEMPLATE renders itself.
ZEPHYR_CONTENT_ONLY = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

WEATHER_SCHEMA = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ANSWER = "It is sunny and 21 degrees in Paris."
OBSERVATION = '{"temp": 21, "sky": "sunny"}'

# LLaMA-Factory's ShareGPT layout: function_call / observation turns, tools as a JSON string.
SHAREGPT_ROW = {
    "conversations": [
        {"from": "human", "value": "What is the weather in Paris?"},
        {
            "from": "function_call",
            "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}),
        },
        {"from": "observation", "value": OBSERVATION},
        {"from": "gpt", "value": ANSWER},
    ],
    "tools": json.dumps([WEATHER_SCHEMA]),
}
# OpenAI's layout: content null, arguments as JSON text, tools wrapped as {"type": "function", ...}.
OPENAI_ROW = {
    "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": OBSERVATION},
        {"role": "assistant", "content": ANSWER},
    ],
    "tools": [{"type": "function", "function": WEATHER_SCHEMA}],
}
ROWS = {"sharegpt": SHAREGPT_ROW, "openai": OPENAI_ROW}


def read_row(tmp_path, name: str):
    path = tmp_path / f"{name}.jsonl"
    path.write_text(json.dumps(ROWS[name]) + "\n", encoding="utf-8")
    result = read_conversations(path)
    assert result.format == {"sharegpt": "sharegpt", "openai": "messages"}[name]
    conv = result.records[0]
    return path, conv.messages, conv.metadata["tools"]


def learned_texts(tokenizer, ex: EncodedExample) -> list[str]:
    """Each maximal run of learned tokens, decoded."""
    runs: list[list[int]] = []
    prev = False
    for tok, lab in zip(ex.input_ids, ex.labels, strict=True):
        if lab != IGNORE_INDEX:
            assert lab == tok
            if not prev:
                runs.append([])
            runs[-1].append(tok)
        prev = lab != IGNORE_INDEX
    return [tokenizer.decode(r, skip_special_tokens=False) for r in runs]


def with_template(tokenizer, template):
    tokenizer.chat_template = template
    return tokenizer


@pytest.mark.parametrize("row", sorted(ROWS))
def test_content_only_template_learns_the_call_and_shows_the_schema(tmp_path, tiny_tokenizer, row):
    from alignlab.config import DataConfig
    from alignlab.training.sft import encode_dataset

    tok = with_template(tiny_tokenizer, CHATML_CONTENT_ONLY)
    path, _, _ = read_row(tmp_path, row)
    with pytest.warns(UserWarning, match="does not render tool calls, tool schemas"):
        (ex,) = encode_dataset(tok, DataConfig(path=str(path)), print).train
    text = tok.decode(ex.input_ids, skip_special_tokens=False)
    # The call turn teaches the call, never a bare end-of-turn.
    assert learned_texts(tok, ex) == [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>',
        f"{ANSWER}<|im_end|>",
    ]
    # The schema is in a system turn, in context but not learned.
    schema = json.dumps({"type": "function", "function": WEATHER_SCHEMA})
    assert text.startswith("<|im_start|>system\n# Tools\n") and f"<tools>\n{schema}\n</tools>" in text
    assert f"<|im_start|>tool\n{OBSERVATION}<|im_end|>" in text  # the template renders tool turns itself


@pytest.mark.parametrize("row", sorted(ROWS))
def test_template_that_renders_tools_is_used_as_it_is(tmp_path, tiny_tokenizer, row):
    tok = with_template(tiny_tokenizer, QWEN25_TOOLS)
    _, messages, tools = read_row(tmp_path, row)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing falls back
        ex = encode_conversation(tok, messages, tools=tools)
        text = render(tok, messages, tools=tools)
    # Exactly the template's own rendering, schemas in the OpenAI shape and arguments as an object.
    native = tok.apply_chat_template(
        [m.to_template_dict() for m in messages], tools=[{"type": "function", "function": WEATHER_SCHEMA}],
        tokenize=False,
    )
    assert text == native == tok.decode(ex.input_ids, skip_special_tokens=False)
    assert '"arguments": "{' not in text and "# Tools\n\nYou may call one or more functions" in text
    assert f"<|im_start|>user\n<tool_response>\n{OBSERVATION}\n</tool_response><|im_end|>" in text
    assert learned_texts(tok, ex) == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        f"{ANSWER}<|im_end|>",
    ]


@pytest.mark.parametrize(
    "template", [CHATML_CONTENT_ONLY, QWEN25_TOOLS, None], ids=["chatml", "qwen2.5", "default"]
)
def test_generation_prompt_and_preference_encoding_see_the_sft_rendering(tmp_path, tiny_tokenizer, template):
    from alignlab.config import DataConfig
    from alignlab.data.preference import encode_pair

    tok = with_template(tiny_tokenizer, template)
    _, messages, tools = read_row(tmp_path, "openai")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = encode_conversation(tok, messages, tools=tools)
        full_text = tok.decode(full.input_ids, skip_special_tokens=False)
        # A generation prompt at each assistant turn is the SFT text up to that turn.
        for k in (1, 3):
            prompt_text = tok.decode(encode_prompt(tok, messages[:k], tools=tools), skip_special_tokens=False)
            assert prompt_text == render(tok, messages[:k], add_generation_prompt=True, tools=tools)
            assert full_text.startswith(prompt_text)
        # DPO / RM: the same tokens and the same learned turns as SFT.
        response = encode_prompt_response(tok, messages[:1], messages[1:], tools=tools)
        assert response.input_ids == full.input_ids and response.labels == full.labels
        pair = PreferencePair(
            prompt=messages[:1],
            chosen=messages[1:],
            rejected=[assistant("I cannot check that.")],
            metadata={"tools": tools},
        )
        encoded = encode_pair(tok, pair, DataConfig(path="unused.jsonl"), None)
    assert encoded.chosen.input_ids == full.input_ids
    assert "get_weather" in learned_texts(tok, encoded.chosen)[0]
    assert '"description": "Current weather of a city"' in tok.decode(encoded.rejected.input_ids)
    assert not any("Current weather" in t for t in learned_texts(tok, encoded.rejected))


def test_tool_replies_a_template_skips_become_tool_response_user_turns(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, THREE_ROLES_ONLY)
    msgs = [
        user("Weather and time in Paris?"),
        Message(role="assistant", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"}),
                                              ToolCall(name="get_time", arguments={"city": "Paris"})]),
        Message(role="tool", content="sunny", tool_call_id="c1"),
        Message(role="tool", content="noon", tool_call_id="c2"),
        assistant("Sunny, and it is noon."),
    ]
    with pytest.warns(UserWarning, match="does not render tool replies"):
        ex = encode_conversation(tok, msgs)
    text = tok.decode(ex.input_ids, skip_special_tokens=False)
    assert (
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nnoon\n</tool_response><|im_end|>"
        in text
    )
    assert learned_texts(tok, ex) == [  # this template puts a newline before every call
        '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
        "Sunny, and it is noon.<|im_end|>",
    ]


@pytest.mark.parametrize("with_system", [False, True])
def test_default_template_renders_tools_as_the_fallback_does(tmp_path, tiny_tokenizer, with_system):
    _, messages, tools = read_row(tmp_path, "sharegpt")
    messages = [system("Be brief."), *messages] if with_system else messages
    own = render(with_template(tiny_tokenizer, DEFAULT_CHAT_TEMPLATE), messages, tools=tools)
    assert "# Tools\n" in own and '"name": "get_weather", "description"' in own
    assert own.startswith("<|system|>\nBe brief.\n\n# Tools\n" if with_system else "<|system|>\n# Tools\n")
    with pytest.warns(UserWarning):
        fallback = render(with_template(tiny_tokenizer, ZEPHYR_CONTENT_ONLY), messages, tools=tools)
    assert fallback == own


def test_an_empty_assistant_turn_is_never_learned(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, CHATML_CONTENT_ONLY)
    ex = encode_conversation(tok, [user("Hi"), assistant(""), user("Again?"), assistant("Hello.")])
    assert learned_texts(tok, ex) == ["Hello.<|im_end|>"]
    assert not has_targets(encode_conversation(tok, [user("Hi"), assistant("  ")]))


def test_a_template_that_drops_some_calls_is_an_error_not_an_empty_turn(tiny_tokenizer):
    from alignlab.errors import DataError

    # Renders the calls of a turn only when it has no content: the probe sees calls rendered.
    tok = with_template(tiny_tokenizer, (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
        "{% if m['tool_calls'] and not m['content'] %}{{ m['tool_calls'] | map(attribute='function')"
        " | map(attribute='name') | join(',') }}{% else %}{{ m['content'] }}{% endif %}{{ '<|im_end|>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ))
    call = ToolCall(name="get_weather", arguments={"city": "Paris"})
    assert learned_texts(
        tok, encode_conversation(tok, [user("Weather?"), Message(role="assistant", tool_calls=[call])])
    ) == ["get_weather<|im_end|>"]
    with pytest.raises(DataError, match="drops the call to 'get_weather' in assistant turn 2"):
        encode_conversation(
            tok, [user("Weather?"), Message(role="assistant", content="Checking.", tool_calls=[call])]
        )
