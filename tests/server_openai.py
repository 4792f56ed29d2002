"""server_openai.py -- llmserve through the official OpenAI Python client.

Usage: server_openai.py BASE_URL MODEL KEY
(BASE_URL like http://127.0.0.1:8080/v1; the server requires KEY.)
Chat and text completions, streaming and not, usage, finish reasons, seeded
determinism, and the client's own error classes for 400, 401 and 404.
Prints one line per check; exits 1 if any fails.
"""
import sys

import openai

base, model, key = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60)
failed = 0


def check(desc, cond, detail=""):
    global failed
    if cond:
        print("ok - " + desc)
    else:
        failed += 1
        print("not ok - %s %s" % (desc, detail))


models = client.models.list()
check("models.list names the model", [m.id for m in models.data] == [model], models)
check("models.retrieve finds it", client.models.retrieve(model).id == model)
try:
    client.models.retrieve("gpt-4")
    check("models.retrieve of another model: NotFoundError", False, "no exception")
except openai.NotFoundError as e:
    check("models.retrieve of another model: NotFoundError", e.status_code == 404, e)

msgs = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]
r = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, temperature=0)
c = r.choices[0]
check("chat: a chat.completion", r.object == "chat.completion" and r.id.startswith("chatcmpl-"), r)
check("chat: assistant text", c.message.role == "assistant" and isinstance(c.message.content, str), c)
check("chat: finish_reason stop or length", c.finish_reason in ("stop", "length"), c.finish_reason)
check("chat: usage adds up", r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
      and 0 < r.usage.completion_tokens <= 16, r.usage)

r = client.chat.completions.create(model=model, messages=msgs, max_completion_tokens=7, extra_body={"ignore_eos": True})
check("chat: max_completion_tokens, finish length", r.choices[0].finish_reason == "length"
      and r.usage.completion_tokens == 7, r)

stream = client.chat.completions.create(model=model, messages=msgs, max_tokens=12, stream=True,
                                        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
chunks = list(stream)
content = [ch for ch in chunks if ch.choices]
check("stream: chat.completion.chunk objects", all(ch.object == "chat.completion.chunk" for ch in chunks), chunks[:1])
check("stream: the first delta carries the role", content[0].choices[0].delta.role == "assistant", content[0])
check("stream: the last choice chunk has finish_reason", content[-1].choices[0].finish_reason == "length"
      and all(ch.choices[0].finish_reason is None for ch in content[:-1]), content[-1])
check("stream: then a usage chunk", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
      and not chunks[-1].choices, chunks[-1])
text = "".join(ch.choices[0].delta.content or "" for ch in content)
check("stream: text arrives", len(text) > 0, repr(text))

a = client.chat.completions.create(model=model, messages=msgs, max_tokens=10, temperature=0.9, seed=7)
b = client.chat.completions.create(model=model, messages=msgs, max_tokens=10, temperature=0.9, seed=7)
check("seed: the same seed, the same text", a.choices[0].message.content == b.choices[0].message.content)

r = client.completions.create(model=model, prompt="The cat", max_tokens=8, temperature=0)
check("completions: text_completion", r.object == "text_completion" and isinstance(r.choices[0].text, str)
      and r.usage.completion_tokens <= 8, r)
parts = list(client.completions.create(model=model, prompt="The cat", max_tokens=8, stream=True,
                                       extra_body={"ignore_eos": True}))
check("completions stream: 8 tokens of text, finish length",
      parts[-1].choices[0].finish_reason == "length" and "".join(p.choices[0].text for p in parts) != "", parts[-1])

try:
    client.chat.completions.create(model=model, messages=msgs, temperature=5)
    check("400 -> BadRequestError", False, "no exception")
except openai.BadRequestError as e:
    check("400 -> BadRequestError naming the field", e.status_code == 400 and "temperature" in str(e), e)

try:
    client.chat.completions.create(model="no-such-model", messages=msgs)
    check("404 -> NotFoundError", False, "no exception")
except openai.NotFoundError as e:
    check("404 -> NotFoundError", e.status_code == 404, e)

bad = openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0)
try:
    bad.chat.completions.create(model=model, messages=msgs)
    check("401 -> AuthenticationError", False, "no exception")
except openai.AuthenticationError as e:
    check("401 -> AuthenticationError", e.status_code == 401, e)

sys.exit(1 if failed else 0)
