"""The seemore model as a PyTorch expert would write it: one fused QKV
projection per attention layer, all heads in one batched product
(`F.scaled_dot_product_attention` where this PyTorch has it, else the same
math in two batched matmuls), and the reference's quirks kept. Like seemore,
and unlike the reference code, the ViT's last block computes only the CLS row,
the only one the model reads (its query, attention, projection and FFN; every
row is still a key and a value); the result is the same. Same parameter count.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
import seemore_torch  # noqa: E402

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class FusedAttention(nn.Module):
    def __init__(self, n_embd, n_head, dropout, causal, scale):
        super().__init__()
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd)
        self.drop = nn.Dropout(dropout)
        self.n_head, self.causal, self.scale, self.p = n_head, causal, scale, dropout

    def forward(self, x, keep=None):
        B, T, C = x.shape
        H = self.n_head
        if keep is None:
            q, k, v = self.qkv(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        else:  # queries for the first `keep` rows only (the ViT's last block; not causal)
            q = F.linear(x[:, :keep], self.qkv.weight[:C]).view(B, keep, H, C // H).transpose(1, 2)
            k, v = F.linear(x, self.qkv.weight[C:]).view(B, T, 2, H, C // H).permute(2, 0, 3, 1, 4)
        p = self.p if self.training else 0.0
        if HAS_SDPA:
            try:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal, scale=self.scale)
            except TypeError:  # PyTorch 2.0: no scale argument; fold it into q
                y = F.scaled_dot_product_attention(q * (self.scale * (q.size(-1) ** 0.5)), k, v, dropout_p=p,
                                                   is_causal=self.causal)
        else:
            w = (q @ k.transpose(-2, -1)) * self.scale
            if self.causal:
                w = w.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = F.dropout(w.softmax(-1), p, self.training) @ v
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, -1, C)))


class Block(seemore_torch.Block):
    """The reference block (LayerNorms, FFN, the quirky residual) with the fused attention."""

    def __init__(self, n_embd, n_head, dropout, causal, quirks):
        super().__init__(n_embd, n_head, dropout, causal, quirks)
        scale = (n_embd if quirks else n_embd // n_head) ** -0.5
        self.attn = FusedAttention(n_embd, n_head, dropout, causal, scale)

    def forward(self, x, keep=None):
        """keep: the output at the first `keep` positions only (every position still attends)."""
        if keep is None:
            return super().forward(x)
        x = x[:, :keep] + self.attn(self.ln1(x), keep)
        if self.quirks:
            x = self.ln2(x)
            return x + self.ffn(x)
        return x + self.ffn(self.ln2(x))


class VisionLanguageModel(nn.Module):
    def __init__(self, c, quirks):
        super().__init__()
        E, n = c["image_embed_dim"], c["n_embd"]
        self.patch = nn.Conv2d(3, E, c["patch_size"], c["patch_size"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, E))
        self.pos_embedding = nn.Parameter(torch.randn(1, (c["img_size"] // c["patch_size"]) ** 2 + 1, E))
        self.vit_drop = nn.Dropout(c["dropout"])
        self.vit = nn.ModuleList([Block(E, c["n_head"], c["dropout"], False, quirks) for _ in range(c["num_blks"])])
        self.vit_ln = nn.LayerNorm(E)
        self.projector = nn.Sequential(nn.Linear(E, 4 * E), nn.GELU(), nn.Linear(4 * E, n), nn.Dropout(c["dropout"]))
        self.tok = nn.Embedding(c["vocab_size"], n)
        self.pos = nn.Embedding(c["block_size"], n)
        self.dec = nn.Sequential(*[Block(n, c["n_head"], c["dropout"], True, quirks) for _ in range(c["n_layer"])])
        self.ln_f = nn.LayerNorm(n)
        self.lm_head = nn.Linear(n, c["vocab_size"])

    def forward(self, images, idx, targets):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.vit_drop(x + self.pos_embedding)
        for i, b in enumerate(self.vit):  # only the CLS row is read: the last block computes only it
            x = b(x, 1 if i + 1 == len(self.vit) else None)
        x = self.vit_ln(x[:, 0])
        x = torch.cat([self.projector(x).unsqueeze(1), self.tok(idx)], dim=1)
        x = x + self.pos(torch.arange(x.size(1), device=x.device))
        logits = self.lm_head(self.ln_f(self.dec(x)))
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
