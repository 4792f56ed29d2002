#!/usr/bin/env python3
"""Write GGUF files with the official `gguf` package (llama.cpp's gguf-py), for
the tests of llmserve's GGUF loader (tests/check_model.c, tests/cli_tokenize.sh).

    gguf_write.py OUT.gguf (--from MODEL.bin | --random dim,layers,heads,kv_heads,hidden,vocab,seq)
                  [--type f32|f16|bf16|q8_0] [--tokenizer tokenizer.bin] [--untied]
                  [--chat-template TEXT] [--arch NAME] [--drop TENSOR] [--reshape TENSOR]
                  [--q4 TENSOR] [--alignment N]

--from reads a llama2.c version 0 checkpoint (such as stories260K.bin); its
weights go into the GGUF unchanged: llama2.c and GGUF llama files both hold Q
and K in Meta's order (llama.cpp's converter undoes Hugging Face's permutation),
so the two files must load to the same model.  --random draws weights (seed 1).
Matrices take --type (Q8_0 only where a row is whole blocks of 32; others stay
F32, as llama.cpp's converter does); norm vectors are always F32.
--tokenizer embeds llama2.c's tokenizer.bin as tokenizer.ggml.* ("llama"
model, spaces as U+2581, <0xNN> byte tokens typed BYTE); with --random the
vocabulary size follows the tokenizer.  --drop/--reshape/--q4 and --arch make
broken files for the error tests.  Exits 77 when the gguf module is absent.
"""
import argparse
import struct
import sys

try:
    import numpy as np
    import gguf
except ImportError as exc:  # the test skips
    print(f"gguf_write.py: {exc}: skipping", file=sys.stderr)
    sys.exit(77)


def read_llama2c_v0(path):
    data = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // heads
    kv = kv_heads * head
    x = np.frombuffer(data, dtype=np.float32, offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        t = x[pos:pos + n].reshape(shape)
        pos += n
        return t

    w = {"emb": take(vocab, dim), "attn_norm": take(layers, dim), "wq": take(layers, dim, dim),
         "wk": take(layers, kv, dim), "wv": take(layers, kv, dim), "wo": take(layers, dim, dim),
         "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim), "w2": take(layers, dim, hidden),
         "w3": take(layers, hidden, dim), "norm": take(dim)}
    take(seq, head)  # freq_cis real and imaginary halves
    w["out"] = None if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq=seq)
    return cfg, w


def random_model(spec, vocab_override):
    dim, layers, heads, kv_heads, hidden, vocab, seq = (int(v) for v in spec.split(","))
    if vocab_override:
        vocab = vocab_override
    rng = np.random.default_rng(1)
    kv = kv_heads * (dim // heads)

    def u(*shape):
        return rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)

    w = {"emb": u(vocab, dim), "attn_norm": 1 + u(layers, dim) / 5, "wq": u(layers, dim, dim),
         "wk": u(layers, kv, dim), "wv": u(layers, kv, dim), "wo": u(layers, dim, dim),
         "ffn_norm": 1 + u(layers, dim) / 5, "w1": u(layers, hidden, dim), "w2": u(layers, dim, hidden),
         "w3": u(layers, hidden, dim), "norm": 1 + u(dim) / 5, "out": None}
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq=seq)
    return cfg, w


def read_tokenizer_bin(path):
    data = open(path, "rb").read()
    pos = 4
    tokens, scores = [], []
    while pos < len(data):
        score, n = struct.unpack_from("fi", data, pos)
        pos += 8
        tokens.append(data[pos:pos + n])
        pos += n
        scores.append(score)
    types = []
    for i, t in enumerate(tokens):
        if i == 0:
            types.append(gguf.TokenType.UNKNOWN)
        elif i in (1, 2):
            types.append(gguf.TokenType.CONTROL)
        elif len(t) == 6 and t.startswith(b"<0x") and t.endswith(b">"):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    # llama2.c's export wrote U+2581 as a space and <s> as "\n<s>\n": undo both.
    pieces = [t.replace(b" ", "\u2581".encode()) for t in tokens]
    pieces[0], pieces[1], pieces[2] = b"<unk>", b"<s>", b"</s>"
    return pieces, scores, types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--random")
    ap.add_argument("--type", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--tokenizer")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--chat-template")
    ap.add_argument("--arch", default="llama")
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--reshape", action="append", default=[])
    ap.add_argument("--q4", action="append", default=[])
    ap.add_argument("--alignment", type=int)
    a = ap.parse_args()

    tok = read_tokenizer_bin(a.tokenizer) if a.tokenizer else None
    if a.src:
        cfg, w = read_llama2c_v0(a.src)
    else:
        cfg, w = random_model(a.random, len(tok[0]) if tok else 0)
    if a.untied and w["out"] is None:
        w["out"] = w["emb"].copy()

    wr = gguf.GGUFWriter(a.out, a.arch)
    if a.alignment:
        wr.add_custom_alignment(a.alignment)
    arch = a.arch
    wr.add_uint32(f"{arch}.context_length", cfg["seq"])
    wr.add_uint32(f"{arch}.embedding_length", cfg["dim"])
    wr.add_uint32(f"{arch}.block_count", cfg["layers"])
    wr.add_uint32(f"{arch}.feed_forward_length", cfg["hidden"])
    wr.add_uint32(f"{arch}.attention.head_count", cfg["heads"])
    wr.add_uint32(f"{arch}.attention.head_count_kv", cfg["kv_heads"])
    wr.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    wr.add_float32(f"{arch}.rope.freq_base", 10000.0)
    wr.add_uint32(f"{arch}.rope.dimension_count", cfg["dim"] // cfg["heads"])
    if tok:
        wr.add_tokenizer_model("llama")
        wr.add_token_list(tok[0])
        wr.add_token_scores(tok[1])
        wr.add_token_types(tok[2])
        wr.add_bos_token_id(1)
        wr.add_eos_token_id(2)
    if a.chat_template:
        wr.add_chat_template(a.chat_template)

    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[a.type]

    def add(name, t, matrix=True):
        if name in a.drop:
            return
        t = np.ascontiguousarray(t, dtype=np.float32)
        if name in a.reshape:
            t = t.reshape(-1)[: t.size - t.shape[-1]].reshape(-1, t.shape[-1]) if t.ndim == 2 else t[:-1]
        if name in a.q4:
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q4_0)
            wr.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
            return
        ty = qtype if matrix else gguf.GGMLQuantizationType.F32
        if ty == gguf.GGMLQuantizationType.Q8_0 and t.shape[-1] % 32 != 0:
            ty = gguf.GGMLQuantizationType.F32
        if ty == gguf.GGMLQuantizationType.F32:
            wr.add_tensor(name, t)
        elif ty == gguf.GGMLQuantizationType.F16:
            wr.add_tensor(name, t.astype(np.float16))
        else:
            wr.add_tensor(name, gguf.quants.quantize(t, ty), raw_dtype=ty)

    add("token_embd.weight", w["emb"])
    add("output_norm.weight", w["norm"], matrix=False)
    if w["out"] is not None:
        add("output.weight", w["out"])
    for l in range(cfg["layers"]):
        add(f"blk.{l}.attn_norm.weight", w["attn_norm"][l], matrix=False)
        add(f"blk.{l}.attn_q.weight", w["wq"][l])
        add(f"blk.{l}.attn_k.weight", w["wk"][l])
        add(f"blk.{l}.attn_v.weight", w["wv"][l])
        add(f"blk.{l}.attn_output.weight", w["wo"][l])
        add(f"blk.{l}.ffn_norm.weight", w["ffn_norm"][l], matrix=False)
        add(f"blk.{l}.ffn_gate.weight", w["w1"][l])
        add(f"blk.{l}.ffn_down.weight", w["w2"][l])
        add(f"blk.{l}.ffn_up.weight", w["w3"][l])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


if __name__ == "__main__":
    main()
