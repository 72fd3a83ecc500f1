"""OpenCLIP text towers on the real token length instead of the padded context.

A causal text tower (CLIP's: an additive -inf upper-triangular attention mask) that pools at the end-of-text
token computes that token's output from the tokens before it only. Positions after the last end-of-text token
of a batch therefore cannot change the pooled output, so the tower can run on the batch's longest sequence
(up to and including its end-of-text token) instead of the full context: a 5-token query runs on 5 positions,
not 77. The positional embedding and the causal mask are sliced to that length, nothing else changes.

Towers that see the whole padded sequence keep the padding: bidirectional ones (SigLIP, MobileCLIP2-S*,
CLIPA: `no_causal_mask`), towers that pool at the last position or through an appended class token (CoCa),
and Hugging Face text towers (xlm-roberta, mt5, nllb), which are not TextTransformers at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from open_clip.transformer import TextTransformer, text_global_pool

TRIMMABLE_POOLS = ("argmax", "eos")  # both pool at one token chosen from the ids; causal attention ends there


@dataclass(frozen=True)
class CausalText:
    """The pieces of a causal, token-pooled text tower, from either place open_clip keeps them."""

    owner: torch.nn.Module  # the CLIP model (standard towers) or its TextTransformer (custom-text models)
    pool_type: str
    eos_id: int | None

    @property
    def transformer(self) -> torch.nn.Module:
        return self.owner.transformer

    def pool_index(self, tokens: torch.Tensor) -> torch.Tensor:
        """The position each row is pooled at, exactly as open_clip's text_global_pool picks it."""
        if self.pool_type == "argmax":
            return tokens.argmax(dim=-1)
        return (tokens == self.eos_id).int().argmax(dim=-1)

    def real_length(self, tokens: torch.Tensor) -> int:
        """Positions the batch needs: up to and including the last row's pooled (end-of-text) token."""
        return int(self.pool_index(tokens).max()) + 1 if tokens.shape[0] else 1

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features of already-trimmed tokens [batch, length <= context]."""
        o = self.owner
        length = tokens.shape[1]
        cast = o.transformer.get_cast_dtype()
        x = o.token_embedding(tokens).to(cast) + o.positional_embedding[:length].to(cast)
        x = o.transformer(x, attn_mask=o.attn_mask[:length, :length])
        x = o.ln_final(x)
        x = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        proj = o.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised features of padded tokens [batch, context], computed on the real length."""
        return self.forward(tokens[:, : self.real_length(tokens)])


def causal_text(model: torch.nn.Module) -> CausalText | None:
    """The model's text tower when it is causal and pools at a token, else None (keep the padding)."""
    text = getattr(model, "text", None)
    if isinstance(text, TextTransformer):  # CustomTextCLIP, CoCa
        if text.cls_emb is not None or text.use_pad_mask or text.output_tokens:
            return None  # an appended class token sees every position, padding included
        return _checked(text, text.pool_type, getattr(text, "eos_id", None))
    if text is not None:  # a Hugging Face text tower
        return None
    if not all(hasattr(model, a) for a in ("transformer", "token_embedding", "positional_embedding", "ln_final")):
        return None
    return _checked(model, getattr(model, "text_pool_type", "argmax"), getattr(model, "text_eos_id", None))


def _checked(owner: Any, pool_type: str, eos_id: int | None) -> CausalText | None:
    mask = getattr(owner, "attn_mask", None)
    if mask is None or pool_type not in TRIMMABLE_POOLS or (pool_type == "eos" and eos_id is None):
        return None
    if not _is_causal(mask):
        return None
    return CausalText(owner, pool_type, eos_id)


def _is_causal(mask: torch.Tensor) -> bool:
    """A 2-d additive mask that blocks exactly the future (-inf above the diagonal, 0 elsewhere)."""
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        return False
    future = torch.ones_like(mask, dtype=torch.bool).triu(1)
    m = mask.float()
    return bool(torch.isneginf(m[future]).all() and (m[~future] == 0).all())

