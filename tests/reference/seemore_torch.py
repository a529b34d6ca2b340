"""The PyTorch reference "seemore", written from the reference description
(docs/model.md): per-head attention modules and the reference's quirks; with
quirks=False the `standard` preset's fixes. Shared by the golden-file script,
the checkpoint check and the benchmarks/pytorch training scripts.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Head(nn.Module):
    def __init__(self, n_embd, head_size, dropout, is_decoder, scale):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.is_decoder = is_decoder
        self.scale = scale

    def forward(self, x):
        B, T, C = x.shape
        k, q, v = self.key(x), self.query(x), self.value(x)
        wei = q @ k.transpose(-2, -1) * self.scale
        if self.is_decoder:
            tril = torch.tril(torch.ones(T, T))
            wei = wei.masked_fill(tril == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))
        return wei @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd, num_heads, dropout, is_decoder, width_scale):
        super().__init__()
        hs = n_embd // num_heads
        scale = (n_embd if width_scale else hs) ** -0.5
        self.heads = nn.ModuleList([Head(n_embd, hs, dropout, is_decoder, scale) for _ in range(num_heads)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


class Block(nn.Module):
    def __init__(self, n_embd, num_heads, dropout, is_decoder, quirks):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, num_heads, dropout, is_decoder, quirks)
        self.ln2 = nn.LayerNorm(n_embd)
        self.ffn = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))
        self.quirks = quirks

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        if self.quirks:
            x = self.ln2(x)
            return x + self.ffn(x)
        return x + self.ffn(self.ln2(x))


class PatchEmbeddings(nn.Module):
    def __init__(self, patch_size, hidden_dim):
        super().__init__()
        self.conv = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, X):
        return self.conv(X).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    def __init__(self, c, quirks):
        super().__init__()
        self.patch_embedding = PatchEmbeddings(c["patch_size"], c["image_embed_dim"])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c["image_embed_dim"]))
        n = (c["img_size"] // c["patch_size"]) ** 2
        self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, c["image_embed_dim"]))
        self.dropout = nn.Dropout(c["dropout"])
        self.blocks = nn.ModuleList([Block(c["image_embed_dim"], c["n_head"], c["dropout"], False, quirks)
                                     for _ in range(c["num_blks"])])
        self.layer_norm = nn.LayerNorm(c["image_embed_dim"])

    def forward(self, X):
        x = self.patch_embedding(X)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.dropout(x + self.pos_embedding)
        for b in self.blocks:
            x = b(x)
        return self.layer_norm(x[:, 0])


class MultiModalProjector(nn.Module):
    def __init__(self, n_embd, image_embed_dim, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(image_embed_dim, 4 * image_embed_dim), nn.GELU(),
                                 nn.Linear(4 * image_embed_dim, n_embd), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, c, quirks):
        super().__init__()
        self.token_embedding_table = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.position_embedding_table = nn.Embedding(c["block_size"], c["n_embd"])
        self.image_projection = MultiModalProjector(c["n_embd"], c["image_embed_dim"], c["dropout"])
        self.blocks = nn.Sequential(*[Block(c["n_embd"], c["n_head"], c["dropout"], True, quirks)
                                      for _ in range(c["n_layer"])])
        self.ln_f = nn.LayerNorm(c["n_embd"])
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"])

    def forward(self, idx, image_embeds, targets):
        tok = self.token_embedding_table(idx)
        img = self.image_projection(image_embeds).unsqueeze(1)
        x = torch.cat([img, tok], dim=1)
        x = x + self.position_embedding_table(torch.arange(x.size(1))).unsqueeze(0)
        logits = self.lm_head(self.ln_f(self.blocks(x)))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss


class VisionLanguageModel(nn.Module):
    def __init__(self, c, quirks):
        super().__init__()
        self.vision_encoder = ViT(c, quirks)
        self.decoder = Decoder(c, quirks)

    def forward(self, images, idx, targets):
        return self.decoder(idx, self.vision_encoder(images), targets)
