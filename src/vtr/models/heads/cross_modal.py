"""The multimodal Transformer encoder of the fine-grained branch (Sec. III.C.2, Eq. 2, Fig. 2).

Text tokens are the queries; video tokens, through their own linear maps, are the keys and values of cross-attention.
Each layer is pre-norm: self-attention over the text, cross-attention to the video, then an MLP.
"""

from __future__ import annotations

from torch import Tensor, nn


class CrossModalLayer(nn.Module):
    """One layer: text self-attention, text->video cross-attention (Eq. 2), MLP; residual around each.

    Args:
        width: width of the text stream.
        video_dim: width of the video tokens (keys and values are projected from it to ``width``).
        num_heads: attention heads (8, Sec. IV.B: "eight attention heads").
        mlp_ratio: MLP hidden width / ``width``.
        dropout: dropout on attention weights and residual branches.
        self_attention: include the text self-attention sub-layer.
    """

    def __init__(
        self,
        width: int,
        video_dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        self_attention: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = (
            nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True) if self_attention else None
        )
        self.norm_self = nn.LayerNorm(width) if self_attention else None
        self.cross_attn = nn.MultiheadAttention(
            width, num_heads, dropout=dropout, kdim=video_dim, vdim=video_dim, batch_first=True
        )
        self.norm_cross = nn.LayerNorm(width)
        self.norm_video = nn.LayerNorm(video_dim)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width), nn.Dropout(dropout)
        )
        self.norm_mlp = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, text: Tensor, text_mask: Tensor, video: Tensor, video_mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Text [B, Lt, W] (mask [B, Lt]) attends to video [B, Lv, Dv] (mask [B, Lv]); masks are True where valid.

        Returns:
            The new text stream [B, Lt, W] and, with ``need_weights``, cross-attention weights [B, heads, Lt, Lv].
        """
        if self.self_attn is not None:
            h = self.norm_self(text)
            attended, _ = self.self_attn(h, h, h, key_padding_mask=~text_mask, need_weights=False)
            text = text + self.dropout(attended)
        h = self.norm_cross(text)
        kv = self.norm_video(video)
        attended, weights = self.cross_attn(
            h, kv, kv, key_padding_mask=~video_mask, need_weights=need_weights, average_attn_weights=False
        )
        text = text + self.dropout(attended)
        text = text + self.mlp(self.norm_mlp(text))
        return text, weights


class CrossModalEncoder(nn.Module):
    """A stack of :class:`CrossModalLayer` with an input projection of the text tokens and a final layer norm.

    Args:
        text_dim: width of the incoming text tokens (linearly mapped to ``width``: "the linear transformation of
            the noun text sequence is treated as the query").
        video_dim: width of the video tokens.
        width: width of the encoder.
        depth: number of layers.
        num_heads, mlp_ratio, dropout, self_attention: see :class:`CrossModalLayer`.
    """

    def __init__(
        self,
        text_dim: int,
        video_dim: int,
        width: int,
        depth: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        self_attention: bool = True,
    ) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"cross-modal width {width} is not divisible by {num_heads} heads")
        self.input_proj = nn.Linear(text_dim, width)
        self.layers = nn.ModuleList(
            CrossModalLayer(width, video_dim, num_heads, mlp_ratio, dropout, self_attention) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)

    def forward(
        self, text: Tensor, text_mask: Tensor, video: Tensor, video_mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        """Returns the text stream [B, Lt, W] and the per-layer cross-attention weights (empty unless asked)."""
        hidden = self.input_proj(text)
        maps = []
        for layer in self.layers:
            hidden, weights = layer(hidden, text_mask, video, video_mask, need_weights=need_weights)
            if weights is not None:
                maps.append(weights)
        return self.norm(hidden), maps
