"""BERT text encoder (transformers), from a local folder or a from-scratch config.

Input: token ids (B, L) with 0 as padding (the cache stores them); output: the pooled
[CLS] representation projected to the feature width. ``pretrained`` is a local folder
(``config.json`` and weights) read with ``local_files_only=True``: nothing is downloaded.
Without it, a BERT of the given sizes (default BERT-base) starts from scratch.
"""

from __future__ import annotations

from torch import Tensor, nn


class BertText(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        vocab_size: int = 30_522,
        pretrained: str = "",
        hidden_size: int = 768,
        layers: int = 12,
        heads: int = 12,
        intermediate_size: int = 3072,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        if pretrained:
            self.bert = BertModel.from_pretrained(pretrained, local_files_only=True)
        else:
            config = BertConfig(
                vocab_size=vocab_size,
                hidden_size=hidden_size,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=intermediate_size,
                max_position_embeddings=max(max_length, 64),
            )
            self.bert = BertModel(config)
        hidden = self.bert.config.hidden_size
        self.proj = nn.Identity() if hidden == feature_dim else nn.Linear(hidden, feature_dim)

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids.long()
        out = self.bert(input_ids=ids, attention_mask=(ids != 0).long())
        return self.proj(out.pooler_output)
