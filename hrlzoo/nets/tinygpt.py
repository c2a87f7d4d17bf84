"""A small pre-LN GPT with SDPA attention, a KV cache and per-token positions.

    cfg = GPTConfig(vocab_size=tok.vocab_size, n_layer=4, n_head=4, d_model=128, max_seq_len=256)
    model = TinyGPT(cfg)
    logits = model(ids)                                   # [B, T, V], causal (training)
    logits = model(ids, pos=pos, key_mask=mask)           # left-padded rows (see below)
    cache = model.new_cache(B, max_len)                   # KV cache for incremental decoding
    logits = model(prompt, pos=pos, key_mask=mask[:, :P], cache=cache)   # prefill
    logits = model(next_tok[:, None], pos=pos_t, key_mask=mask[:, :P + 1], cache=cache)  # one step
    h = model.hidden(ids, pos=pos, key_mask=mask)         # [B, T, d_model]: before the output head

Block (pre-LN, as GPT-2 / nanoGPT):  x = x + Attn(LN(x));  x = x + MLP(LN(x));  logits =
LN(x) @ E^T with the output head tied to the token embedding E (`tie_weights`).
Positions: learned absolute embeddings (`rotary=False`) or rotary embeddings on q and k
(`rotary=True`, RoPE base 10000). Positions are passed per token, so a left-padded row gets the
same positions (0, 1, ...) from its first real token as the unpadded sequence: padded and
unpadded rows give the same logits.

Masks. `key_mask` [B, S] marks which keys are real tokens (S = tokens in the cache after this
call). A query attends to real keys at or before its own place, and always to itself (so a
padding query is never fully masked: its output is junk but finite, and no real token reads
it). Without `key_mask` and cache, attention is plain causal (`is_causal=True`, the fast path
for right-padded training batches, where padding comes after every real token).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 256       # positions available (learned table size; RoPE cache size)
    mlp_ratio: int = 4           # hidden width of the MLP = mlp_ratio * d_model
    dropout: float = 0.0
    rotary: bool = False         # rotary position embeddings instead of a learned table
    tie_weights: bool = True     # output head = token embedding matrix
    bias: bool = True            # biases in linear layers and LayerNorms

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.rotary and (self.d_model // self.n_head) % 2:
            raise ValueError("rotary embeddings need an even head size")


class KVCache:
    """Keys and values of every layer, [B, H, capacity, head_dim] each; `length` is the number
    of positions written (the model appends to it in `forward`), `max_len` the most it will
    hold. The buffers grow in steps of `chunk` positions (`reserve`, a copy of what is written),
    so a decoding step can attend over the whole buffer, one contiguous block per row and head,
    with the places not yet written masked: reading a prefix slice of a longer buffer is a
    strided read, which costs more than the few masked places (measured,
    benchmarks/lm_sampler.py). `chunk=None` allocates `max_len` at once."""

    def __init__(self, n_layer: int, batch: int, n_head: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device, chunk: int | None = 32):
        self.shape = (batch, n_head, 0, head_dim)
        self.dtype, self.device = dtype, device
        self.k = [torch.zeros(self.shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(self.shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.length = 0
        self.max_len = max_len
        self.chunk = chunk
        self.reserve(0 if chunk else max_len)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def reserve(self, n: int) -> None:
        """Make room for `n` positions (grown to a multiple of `chunk`, at most `max_len`)."""
        if n <= self.capacity:
            return
        if n > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions, {n} asked")
        size = self.max_len if not self.chunk else min(self.max_len, -(-n // self.chunk) * self.chunk)
        B, H, _, D = self.k[0].shape

        def grow(old):
            new = torch.zeros((B, H, size, D), dtype=old.dtype, device=old.device)
            new[:, :, :self.length] = old[:, :, :self.length]
            return new

        self.k = [grow(k) for k in self.k]
        self.v = [grow(v) for v in self.v]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows `rows` (drop finished sequences)."""
        self.k = [k[rows] for k in self.k]
        self.v = [v[rows] for v in self.v]

    def rows(self, rows: torch.Tensor, room: int = 0) -> "KVCache":
        """A new cache holding the written positions of batch rows `rows` (indices, repeats
        allowed: one shared prompt for several continuations) with `room` more places; the
        copy keeps autograd's graph, so a loss on the continuations reaches these keys and
        values (and whatever produced them)."""
        new = KVCache.__new__(KVCache)
        new.dtype, new.device, new.chunk = self.dtype, self.device, None
        new.length, new.max_len = self.length, self.length + room

        def take(t):
            t = t[rows, :, :self.length]
            if not room:
                return t
            return torch.cat([t, t.new_zeros((t.shape[0], t.shape[1], room, t.shape[3]))], 2)

        new.k, new.v = [take(k) for k in self.k], [take(v) for v in self.v]
        new.shape = new.k[0].shape
        return new

    def detached(self) -> "KVCache":
        """The same keys and values as new leaf tensors that require grad (`rows` copies of it
        then gather their gradients in `.grad`, for one backward through what made them)."""
        new = self.rows(torch.arange(self.k[0].shape[0], device=self.k[0].device))
        new.k = [k.detach().requires_grad_() for k in new.k]
        new.v = [v.detach().requires_grad_() for v in new.v]
        return new


def _rope_tables(pos: torch.Tensor, head_dim: int, base: float = 10000.0):
    """cos, sin of shape [B, 1, T, head_dim/2] for positions pos [B, T]."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.float32) / head_dim)
    ang = pos.to(torch.float32)[..., None] * inv  # [B, T, hd/2]
    return ang.cos()[:, None], ang.sin()[:, None]


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x, rope, mask, cache: KVCache | None, layer: int):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:  # queries and keys rotated in one call (the same arithmetic, fewer ops)
            (q, k), v = _rope(qkv[:2], *rope), qkv[2]
        else:
            q, k, v = qkv
        drop = self.dropout if self.training else 0.0
        if cache is not None:
            start = cache.length
            cache.k[layer][:, :, start:start + T] = k
            cache.v[layer][:, :, start:start + T] = v
            if T == 1 and not drop:
                # one decoding step: the whole buffer (`mask` covers it), two batched
                # matrix-vector products per head and a softmax; SDPA's flash kernel is made for
                # blocks of queries and costs more here (measured, benchmarks/lm_sampler.py)
                att = torch.matmul(q, cache.k[layer].transpose(-1, -2)).mul_(self.head_dim ** -0.5)
                y = torch.matmul(att.add_(mask).softmax(-1), cache.v[layer])
                return self.proj(y.transpose(1, 2).reshape(B, T, C))
            k = cache.k[layer][:, :, :start + T]
            v = cache.v[layer][:, :, :start + T]
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        hidden = cfg.mlp_ratio * cfg.d_model
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, hidden, bias=cfg.bias), nn.GELU(),
                                 nn.Linear(hidden, cfg.d_model, bias=cfg.bias), nn.Dropout(cfg.dropout))

    def forward(self, x, rope, mask, cache, layer):
        x = x + self.attn(self.ln1(x), rope, mask, cache, layer)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Decoder-only transformer; see the module docstring for the call forms."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = None if cfg.rotary else nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
        if cfg.tie_weights:
            self.head.weight = self.tok_emb.weight

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch: int, max_len: int, chunk: int | None = 32) -> KVCache:
        p = self.tok_emb.weight
        return KVCache(self.cfg.n_layer, batch, self.cfg.n_head, max_len,
                       self.cfg.d_model // self.cfg.n_head, p.dtype, p.device, chunk=chunk)

    def forward(self, idx: torch.Tensor, pos: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """Logits [B, T, V] for tokens idx [B, T].

        pos: [B, T] positions (default 0..T-1, or continuing the cache); key_mask: [B, S] bool,
        real keys among all S = cache.length + T keys; cache: appended to and advanced."""
        return self.head(self.hidden(idx, pos, key_mask, cache))

    def hidden(self, idx: torch.Tensor, pos: torch.Tensor | None = None,
               key_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """The last block's output after the final LayerNorm, [B, T, d_model]: what the output
        head reads (same arguments as `forward`). Value heads and critics read it too."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if pos is None:
            pos = torch.arange(start, start + T, device=idx.device).expand(B, T)
        x = self.tok_emb(idx)
        rope = None
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)
        else:
            rope = _rope_tables(pos, self.cfg.d_model // self.cfg.n_head)
        x = self.drop(x)
        if cache is not None:
            cache.reserve(start + T)
        if cache is not None and T == 1 and not (self.training and self.cfg.dropout):
            mask = decode_bias(key_mask, start, cache.capacity, x.dtype)
        elif key_mask is not None or start:
            # additive form, built once for every layer (SDPA converts a bool mask in every call)
            mask = attention_mask(key_mask, T, start, idx.device)
            mask = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(~mask, float("-inf"))
        else:
            mask = None
        for i, block in enumerate(self.blocks):
            x = block(x, rope, mask, cache, i)
        if cache is not None:
            cache.length = start + T
        return self.ln_f(x)

    def config_dict(self) -> dict:
        return asdict(self.cfg)


def attention_mask(key_mask: torch.Tensor | None, T: int, start: int, device) -> torch.Tensor:
    """Boolean SDPA mask [B or 1, 1, T, start + T]: query i (at place start + i) sees key j
    iff j <= start + i and key j is real, or j is the query itself."""
    S = start + T
    q_place = torch.arange(start, S, device=device)[:, None]
    k_place = torch.arange(S, device=device)[None, :]
    causal = k_place <= q_place                           # [T, S]
    if key_mask is None:
        return causal[None, None]
    if key_mask.shape[1] != S:
        raise ValueError(f"key_mask covers {key_mask.shape[1]} keys, expected {S}")
    allowed = causal[None] & key_mask[:, None, :]         # [B, T, S]
    allowed = allowed | (k_place == q_place)[None]        # a query always sees itself
    return allowed[:, None]


def decode_bias(key_mask: torch.Tensor | None, start: int, capacity: int, dtype) -> torch.Tensor:
    """Additive mask [B or 1, 1, 1, capacity] of the one query at place `start`: 0 for the real
    keys at or before it (and itself), -inf elsewhere (key_mask [B, start + 1] marks the real
    ones; None: all of them)."""
    if key_mask is not None and key_mask.shape[1] != start + 1:
        raise ValueError(f"key_mask covers {key_mask.shape[1]} keys, expected {start + 1}")
    B = 1 if key_mask is None else key_mask.shape[0]
    device = None if key_mask is None else key_mask.device
    bias = torch.full((B, 1, 1, capacity), float("-inf"), dtype=dtype, device=device)
    if key_mask is None:
        bias[..., :start + 1] = 0.0
    else:
        bias[:, 0, 0, :start + 1].masked_fill_(key_mask, 0.0)
        bias[:, 0, 0, start] = 0.0  # a query always sees itself
    return bias


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Per-token positions of left-padded rows: 0 at the first real token (padding gets 0)."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


def save_model(path, model: TinyGPT, **extra) -> None:
    """Write {"config", "state_dict", **extra} to `path` with torch.save (CPU tensors)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": model.config_dict(), "state_dict": state, **extra}, path)


def load_model(path, device: str | torch.device = "cpu") -> tuple[TinyGPT, dict]:
    """(model on `device` in eval mode, the extra entries) from a `save_model` file."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = TinyGPT(GPTConfig(**blob.pop("config")))
    model.load_state_dict(blob.pop("state_dict"))
    return model.to(device).eval(), blob
