#!/usr/bin/python3
"""Writes tests/fixtures/torch_tiny.bin: a tiny Llama-family model, its inputs, and what PyTorch
computes for it (logits, loss, every parameter's gradient), for tests/test_torch_reference.c.

The architecture is implemented here from its definition, independently of slm's C code:
RMSNorm (x / sqrt(mean(x^2) + eps) * w), RoPE on adjacent pairs (x[2i], x[2i+1]) by angle
pos * theta^(-2i/hd), causal grouped-query attention (query head h reads KV head h // (H/Hkv)),
scale 1/sqrt(hd), SwiGLU MLP w_down(silu(w_gate x) * w_up x), final RMSNorm, untied output.
Everything is float32 on one CPU thread, so a re-run writes the same bytes.

Needs python3-torch and python3-numpy (Debian; `scripts/setup --with-python`); CI does not: the
fixture is committed. Usage: /usr/bin/python3 scripts/torch_reference.py [output path]

Fixture format (little-endian):
  char[8]  magic "SLMTORCH"
  u32      version (1)
  i32 x 10 n_vocab, dim, n_layers, n_heads, n_kv_heads, hidden_dim, ctx_len, tied_output,
           batch B, seq T
  f32 x 2  rope_theta, norm_eps
  u64      n_params
  f32      params[n_params]      slm's tensor order and layout (model.c's table: token_embd;
                                 per layer attn_norm, attn_q, attn_k, attn_v, attn_output,
                                 ffn_norm, ffn_gate, ffn_up, ffn_down; output_norm; output),
                                 matrices row-major (out, in)
  i32      tokens[B*T]           row b, position t at b*T + t (sequence b, position t)
  i32      targets[B*T]          -1: not counted
  f32      logits[B*T*V]
  f32      loss                  mean cross-entropy over counted targets
  f32      grads[n_params]       d(loss)/d(params), same layout as params
"""
import math
import struct
import sys

import numpy as np
import torch

V, D, L, H, HKV, F, CTX, TIED, B, T = 64, 32, 2, 4, 2, 48, 8, 0, 2, 8
THETA, EPS = 10000.0, 1e-5
SEED = 20240611
HD = D // H


def make_params(gen):
    """Parameters in slm's order, each a leaf tensor: (name, tensor)."""
    def normal(*shape, std):
        return (torch.randn(*shape, generator=gen, dtype=torch.float32) * std).requires_grad_()

    def norm_w():
        return (1.0 + 0.2 * torch.randn(D, generator=gen, dtype=torch.float32)).requires_grad_()

    ps = [("token_embd", normal(V, D, std=1.0))]
    for i in range(L):
        ps += [(f"blk.{i}.attn_norm", norm_w()),
               (f"blk.{i}.attn_q", normal(H * HD, D, std=0.3)),
               (f"blk.{i}.attn_k", normal(HKV * HD, D, std=0.3)),
               (f"blk.{i}.attn_v", normal(HKV * HD, D, std=0.3)),
               (f"blk.{i}.attn_output", normal(D, H * HD, std=0.3)),
               (f"blk.{i}.ffn_norm", norm_w()),
               (f"blk.{i}.ffn_gate", normal(F, D, std=0.3)),
               (f"blk.{i}.ffn_up", normal(F, D, std=0.3)),
               (f"blk.{i}.ffn_down", normal(D, F, std=0.3))]
    ps += [("output_norm", norm_w())]
    if not TIED:
        ps += [("output", normal(V, D, std=0.3))]
    return ps


def rmsnorm(x, w):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):
    """x: (B, T, heads, HD); rotates (x[2i], x[2i+1]) by the angles of each position."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def forward(p, tokens):
    # angles in float64, then float32 (as slm's table)
    freq = THETA ** (-2.0 * torch.arange(HD // 2, dtype=torch.float64) / HD)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    x = p["token_embd"][tokens]  # (B, T, D)
    for i in range(L):
        n = rmsnorm(x, p[f"blk.{i}.attn_norm"])
        q = rope((n @ p[f"blk.{i}.attn_q"].t()).view(B, T, H, HD), cos, sin)
        k = rope((n @ p[f"blk.{i}.attn_k"].t()).view(B, T, HKV, HD), cos, sin)
        v = (n @ p[f"blk.{i}.attn_v"].t()).view(B, T, HKV, HD)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, HD)
        rep = H // HKV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HD))
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v  # (B, H, T, HD)
        x = x + a.transpose(1, 2).reshape(B, T, H * HD) @ p[f"blk.{i}.attn_output"].t()
        n = rmsnorm(x, p[f"blk.{i}.ffn_norm"])
        g = n @ p[f"blk.{i}.ffn_gate"].t()
        u = n @ p[f"blk.{i}.ffn_up"].t()
        x = x + (torch.nn.functional.silu(g) * u) @ p[f"blk.{i}.ffn_down"].t()
    x = rmsnorm(x, p["output_norm"])
    w_out = p["token_embd"] if TIED else p["output"]
    return x @ w_out.t()  # (B, T, V)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/torch_tiny.bin"
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)
    plist = make_params(gen)
    p = dict(plist)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[1, 3] = -1  # one ignored target
    logits = forward(p, tokens)
    loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T),
                                             ignore_index=-1)
    loss.backward()

    flat = torch.cat([t.detach().reshape(-1) for _, t in plist]).numpy().astype("<f4")
    grads = torch.cat([t.grad.reshape(-1) for _, t in plist]).numpy().astype("<f4")
    with open(out_path, "wb") as f:
        f.write(b"SLMTORCH")
        f.write(struct.pack("<I", 1))
        f.write(struct.pack("<10i", V, D, L, H, HKV, F, CTX, TIED, B, T))
        f.write(struct.pack("<2f", THETA, EPS))
        f.write(struct.pack("<Q", flat.size))
        f.write(flat.tobytes())
        f.write(tokens.numpy().astype("<i4").tobytes())
        f.write(targets.numpy().astype("<i4").tobytes())
        f.write(logits.detach().numpy().astype("<f4").tobytes())
        f.write(struct.pack("<f", loss.item()))
        f.write(grads.tobytes())
    print(f"{out_path}: {flat.size} parameters, loss {loss.item():.6f}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
