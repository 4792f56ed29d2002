#!/usr/bin/env python3
"""Byte-level BPE references for llmserve's GPT-2 style tokenizer, from Hugging
Face's own `tokenizers` library.

    bpe_reference.py OUT.gguf OUT.txt --pre smollm|gpt2 --corpus FILE...

Trains a small byte-level BPE (vocabulary 800) on the corpus files with the
pre-tokenizer SmolLM uses (--pre smollm: Digits(individual_digits) then
ByteLevel with GPT-2's regex) or GPT-2's alone (--pre gpt2), writes it into a
GGUF file with the official gguf package (a tiny random llama model around it:
tokenizer.ggml.model "gpt2", .tokens, .token_type, .merges, .pre, no BOS), and
writes OUT.txt: one line per test text, "IDS<TAB>TEXT" with the text as a JSON
string and IDS the ids Hugging Face's tokenizer gives.  Exits 77 when a module
is missing (the test skips).
"""
import argparse
import json
import sys

try:
    import numpy as np
    import gguf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
except ImportError as exc:
    print(f"bpe_reference.py: {exc}: skipping", file=sys.stderr)
    sys.exit(77)

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "it's we'll they've I'm you'd she'S IT'S don't",
    "numbers 123 4567 3.14159 and 1,000,000",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\n\n  indented\n    more",
    "multiple    spaces   between",
    "punctuation!!! ??? ... --- (parens) [brackets] {braces} <tags/>",
    "caf\u00e9 na\u00efve \u00fcber \u0161\u010d\u0159",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002",
    "emoji \U0001F600\U0001F389 and \u2603 snowman",
    "Arabic-Indic digits \u0663\u0664\u0665 and roman \u2167",
    "   \n  x",
    "llmsim run workloads/examples/chat-day-hpa.yaml -o out/chat --set cache.ttl=5m",
    "a",
    " ",
    "\n",
    "x\u00a0y\u3000z",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf_out")
    ap.add_argument("txt_out")
    ap.add_argument("--pre", choices=["smollm", "gpt2"], required=True)
    ap.add_argument("--corpus", nargs="+", required=True)
    a = ap.parse_args()

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if a.pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train(a.corpus, trainer)

    model = json.loads(tok.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    pieces = [p for p, _ in vocab]
    types = [gguf.TokenType.CONTROL if p in specials else gguf.TokenType.NORMAL for p in pieces]

    n = len(pieces)
    dim, hidden, heads = 16, 32, 2
    rng = np.random.default_rng(2)
    w = gguf.GGUFWriter(a.gguf_out, "llama")
    for key, val in [("context_length", 64), ("embedding_length", dim), ("block_count", 1),
                     ("feed_forward_length", hidden), ("attention.head_count", heads),
                     ("attention.head_count_kv", heads)]:
        w.add_uint32(f"llama.{key}", val)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(a.pre)
    w.add_token_list(pieces)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)

    def t(*shape):
        return rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)

    w.add_tensor("token_embd.weight", t(n, dim))
    w.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    for name, shape in [("attn_norm", (dim,)), ("attn_q", (dim, dim)), ("attn_k", (dim, dim)), ("attn_v", (dim, dim)),
                        ("attn_output", (dim, dim)), ("ffn_norm", (dim,)), ("ffn_gate", (hidden, dim)),
                        ("ffn_down", (dim, hidden)), ("ffn_up", (hidden, dim))]:
        w.add_tensor(f"blk.0.{name}.weight", t(*shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    with open(a.txt_out, "w") as f:
        for text in TEXTS:
            ids = tok.encode(text).ids
            assert tok.decode(ids) == text
            f.write(" ".join(map(str, ids)) + "\t" + json.dumps(text) + "\n")


if __name__ == "__main__":
    main()
