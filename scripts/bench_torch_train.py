#!/usr/bin/python3
"""Training speed of the same Llama-family model in PyTorch, for `make bench` to compare with.

Builds the model slm trains (RMSNorm, adjacent-pair RoPE, grouped-query attention, SwiGLU, tied
embedding) in plain PyTorch float32 and times forward + backward + AdamW steps on random tokens.
Prints one line: "pytorch: <tokens/s> tok/s ...". Needs python3-torch (scripts/setup --with-python);
exits 3 with a message when PyTorch is not installed, so the benchmark can say it was skipped.

usage: bench_torch_train.py [--dim 288 --layers 6 --heads 6 --kv-heads 6 --hidden 768
                             --vocab 32000 --seq 256 --batch 8 --steps 5 --threads 2]
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("pytorch: not installed (apt-get install python3-torch), skipped")
    sys.exit(3)


class Block(torch.nn.Module):
    def __init__(self, d, h, hkv, f, eps):
        super().__init__()
        self.h, self.hkv, self.hd, self.eps = h, hkv, d // h, eps
        self.attn_norm = torch.nn.Parameter(torch.ones(d))
        self.wq = torch.nn.Linear(d, h * self.hd, bias=False)
        self.wk = torch.nn.Linear(d, hkv * self.hd, bias=False)
        self.wv = torch.nn.Linear(d, hkv * self.hd, bias=False)
        self.wo = torch.nn.Linear(h * self.hd, d, bias=False)
        self.ffn_norm = torch.nn.Parameter(torch.ones(d))
        self.w_gate = torch.nn.Linear(d, f, bias=False)
        self.w_up = torch.nn.Linear(d, f, bias=False)
        self.w_down = torch.nn.Linear(f, d, bias=False)

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, cos, sin):  # x: (B, T, heads, hd), adjacent pairs rotate
        x2 = x.reshape(*x.shape[:-1], -1, 2)
        a, b = x2[..., 0], x2[..., 1]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        n = self.norm(x, self.attn_norm)
        q = self.rope(self.wq(n).view(B, T, self.h, self.hd), cos, sin).transpose(1, 2)
        k = self.rope(self.wk(n).view(B, T, self.hkv, self.hd), cos, sin).transpose(1, 2)
        v = self.wv(n).view(B, T, self.hkv, self.hd).transpose(1, 2)
        if self.hkv != self.h:
            k = k.repeat_interleave(self.h // self.hkv, dim=1)
            v = v.repeat_interleave(self.h // self.hkv, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(y)
        n = self.norm(x, self.ffn_norm)
        return x + self.w_down(F.silu(self.w_gate(n)) * self.w_up(n))


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.emb = torch.nn.Embedding(a.vocab, a.dim)
        self.blocks = torch.nn.ModuleList(Block(a.dim, a.heads, a.kv_heads, a.hidden, 1e-5) for _ in range(a.layers))
        self.out_norm = torch.nn.Parameter(torch.ones(a.dim))
        hd = a.dim // a.heads
        inv = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        ang = torch.arange(a.seq, dtype=torch.float32)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos()[None, :, None, :])
        self.register_buffer("sin", ang.sin()[None, :, None, :])

    def forward(self, tokens, targets):
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.out_norm
        logits = x @ self.emb.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("dim", 288), ("layers", 6), ("heads", 6), ("kv-heads", 6), ("hidden", 768),
                          ("vocab", 32000), ("seq", 256), ("batch", 8), ("steps", 5), ("threads", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    m = Model(a)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    tok = torch.randint(0, a.vocab, (a.batch, a.seq))
    tgt = torch.randint(0, a.vocab, (a.batch, a.seq))
    times = []
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = m(tok, tgt)
        loss.backward()
        opt.step()
        if i > 0:  # the first step warms up allocators
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    params = sum(p.numel() for p in m.parameters())
    print(f"pytorch: {a.batch * a.seq / med:.0f} tok/s (median step {med * 1e3:.0f} ms, {params / 1e6:.2f}M params, "
          f"torch {torch.__version__}, {a.threads} threads)")


if __name__ == "__main__":
    main()
