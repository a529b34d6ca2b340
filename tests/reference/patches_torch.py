"""The patch-prefix model (image_tokens = "patches") in PyTorch, written from
its description, beside the reference model of seemore_torch.py whose
parameters it shares name for name:

  the ViT runs every block on every row; its final LayerNorm goes over the P
  patch rows (the CLS row only feeds their attention); with patch_pool k the
  outputs are averaged over k x k squares of the patch grid; the projector
  maps each of these tokens to the decoder's width, and they stand before the
  text as a prefix of P' positions (positions 0..P'-1, the text after them);
  logits come from the last prefix position and the text positions, so that
  the targets are laid out as with the one CLS token.
"""
import torch
import torch.nn.functional as F

from seemore_torch import Decoder, ViT, VisionLanguageModel


class PatchViT(ViT):
    def __init__(self, c, quirks, pool):
        super().__init__(c, quirks)
        self.pool = pool
        self.grid = c["img_size"] // c["patch_size"]

    def forward(self, X):
        x = self.patch_embedding(X)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.dropout(x + self.pos_embedding)
        for b in self.blocks:
            x = b(x)
        x = self.layer_norm(x[:, 1:])  # [B, P, E], row-major over the grid
        if self.pool > 1:
            B, P, E = x.shape
            g = x.transpose(1, 2).reshape(B, E, self.grid, self.grid)
            x = F.avg_pool2d(g, self.pool).flatten(2).transpose(1, 2)
        return x


class PrefixDecoder(Decoder):
    def forward(self, idx, image_tokens, targets):
        tok = self.token_embedding_table(idx)
        img = self.image_projection(image_tokens)  # [B, P, n_embd]
        P = img.size(1)
        x = torch.cat([img, tok], dim=1)
        x = x + self.position_embedding_table(torch.arange(x.size(1))).unsqueeze(0)
        x = self.blocks(x)[:, P - 1:]
        logits = self.lm_head(self.ln_f(x))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss


class PatchVisionLanguageModel(VisionLanguageModel):
    def __init__(self, c, quirks, pool):
        super().__init__(c, quirks)
        self.vision_encoder = PatchViT(c, quirks, pool)
        self.decoder = PrefixDecoder(c, quirks)
