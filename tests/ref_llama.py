#!/usr/bin/env python3
"""ref_llama.py -- a plain float64 numpy implementation of the llama2.c
forward pass (run.c), written independently of the C code it checks.

Reads a llama2.c legacy checkpoint (version 0: seven int32 -- dim,
hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: separate
classifier), seq_len -- then float32 tensors in run.c's order) and either
prints the logits after one token, or decodes greedily.

  ref_llama.py MODEL.bin logits [--token T]        one logit per line (position 0)
  ref_llama.py MODEL.bin greedy [-n N] [--prompt-ids "1 2 3"]
                                                    the generated ids, space-separated

Greedy decoding starts from BOS (id 1) unless --prompt-ids is given and
generates exactly N ids after the prompt (no stop on BOS/EOS).
"""
import argparse
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 28:
        sys.exit(f"{path}: shorter than the 28-byte header")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // n_heads
    data = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        if off + n > data.size:
            sys.exit(f"{path}: truncated")
        t = data[off:off + n].reshape(shape)
        off += n
        return t

    w = {}
    w["emb"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["wq"] = take(n_layers, n_heads * hs, dim)
    w["wk"] = take(n_layers, n_kv * hs, dim)
    w["wv"] = take(n_layers, n_kv * hs, dim)
    w["wo"] = take(n_layers, dim, n_heads * hs)
    w["rms_ffn"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)
    w["w2"] = take(n_layers, dim, hidden)
    w["w3"] = take(n_layers, hidden, dim)
    w["rms_final"] = take(dim)
    take(seq_len * hs // 2)  # freq_cis_real (unused: run.c recomputes RoPE)
    take(seq_len * hs // 2)  # freq_cis_imag
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, vocab=vocab,
               seq_len=seq_len, hs=hs)
    return cfg, w


def rmsnorm(x, g):
    return x / np.sqrt(np.mean(x * x) + 1e-5) * g


def rope(x, pos, hs):
    # x is (heads, hs); pairs (2i, 2i+1) turn by pos * 10000^(-2i/hs)
    i = np.arange(0, hs, 2)
    ang = pos * (10000.0 ** (-i / hs))
    c, s = np.cos(ang), np.sin(ang)
    a, b = x[:, 0::2].copy(), x[:, 1::2].copy()
    out = np.empty_like(x)
    out[:, 0::2] = a * c - b * s
    out[:, 1::2] = a * s + b * c
    return out


class Model:
    def __init__(self, path):
        self.cfg, self.w = load(path)
        c = self.cfg
        self.kc = np.zeros((c["n_layers"], c["seq_len"], c["n_kv"], c["hs"]))
        self.vc = np.zeros_like(self.kc)

    def forward(self, token, pos):
        c, w = self.cfg, self.w
        hs, nh, nkv = c["hs"], c["n_heads"], c["n_kv"]
        x = w["emb"][token].copy()
        for l in range(c["n_layers"]):
            xb = rmsnorm(x, w["rms_att"][l])
            q = (w["wq"][l] @ xb).reshape(nh, hs)
            k = (w["wk"][l] @ xb).reshape(nkv, hs)
            v = (w["wv"][l] @ xb).reshape(nkv, hs)
            q, k = rope(q, pos, hs), rope(k, pos, hs)
            self.kc[l, pos], self.vc[l, pos] = k, v
            att = np.empty((nh, hs))
            for h in range(nh):
                kv = h // (nh // nkv)
                sc = self.kc[l, :pos + 1, kv] @ q[h] / np.sqrt(hs)
                sc = np.exp(sc - sc.max())
                sc /= sc.sum()
                att[h] = sc @ self.vc[l, :pos + 1, kv]
            x = x + w["wo"][l] @ att.reshape(-1)
            xb = rmsnorm(x, w["rms_ffn"][l])
            g = w["w1"][l] @ xb
            u = w["w3"][l] @ xb
            x = x + w["w2"][l] @ (g / (1.0 + np.exp(-g)) * u)
        return w["cls"] @ rmsnorm(x, w["rms_final"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("mode", choices=["logits", "greedy"])
    ap.add_argument("--token", type=int, default=1)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--prompt-ids", default="1")
    a = ap.parse_args()
    m = Model(a.model)
    if a.mode == "logits":
        for v in m.forward(a.token, 0):
            print(f"{v:.9g}")
        return
    ids = [int(t) for t in a.prompt_ids.split()]
    out = []
    pos = 0
    for t in ids[:-1]:
        m.forward(t, pos)
        pos += 1
    tok = ids[-1]
    for _ in range(a.n):
        if pos >= m.cfg["seq_len"]:
            break
        tok = int(np.argmax(m.forward(tok, pos)))
        pos += 1
        out.append(tok)
    print(" ".join(str(t) for t in out))


if __name__ == "__main__":
    main()
