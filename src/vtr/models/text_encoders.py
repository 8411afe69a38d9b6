"""Text towers: any BERT-like Hugging Face ``AutoModel`` (DistilBERT in the paper, Sec. III.B.2) and its tokenizer."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vtr.config import RunConfig
from vtr.errors import ConfigError
from vtr.models.outputs import TextEncoderOutput
from vtr.models.pretrained import _hint, resolve_pretrained
from vtr.models.registry import register_text_encoder

TEXT_POOLINGS = ("cls", "mean")

# Config attributes that hold dropout rates, across BERT-like architectures (BERT/MiniLM/RoBERTa, DistilBERT).
_DROPOUT_ATTRIBUTES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")


def load_tokenizer(name: str) -> Any:
    """A fast or slow ``AutoTokenizer`` from a hub id, a local folder or ``"minilm-offline"``."""
    from transformers import AutoTokenizer

    source = resolve_pretrained(name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load tokenizer {name!r}: {_hint(source)} ({error})") from None


def _set_dropout(hf_config: Any, dropout: float | None) -> None:
    if dropout is None:
        return
    for attribute in _DROPOUT_ATTRIBUTES:
        if hasattr(hf_config, attribute):
            setattr(hf_config, attribute, dropout)


class TextEncoder(nn.Module):
    """Base class of the text-encoder registry: ``forward(input_ids, attention_mask) -> TextEncoderOutput``."""

    hidden_size: int

    @classmethod
    def from_run_config(cls, config: RunConfig) -> tuple[TextEncoder, Any]:
        """The tower and its tokenizer as a run config asks (random weights or ``model.text.pretrained``)."""
        raise NotImplementedError

    @classmethod
    def from_tower_config(cls, config: RunConfig, tower_config: dict[str, Any]) -> TextEncoder:
        """Rebuild, with random weights and without network, a tower saved by :meth:`tower_config`."""
        raise NotImplementedError

    def tower_config(self) -> dict[str, Any]:
        """A JSON-able description from which :meth:`from_tower_config` rebuilds the architecture."""
        raise NotImplementedError

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> TextEncoderOutput:
        """Encode token ids [B, L] with mask [B, L]."""
        raise NotImplementedError

    def freeze_bottom(self, num_layers: int) -> None:
        """Stop training the embeddings and the ``num_layers`` lowest layers (-1: everything)."""
        if num_layers:
            raise ConfigError(f"{type(self).__name__} does not support model.text.freeze_layers")


@register_text_encoder("auto")
class HFTextEncoder(TextEncoder):
    """A Hugging Face encoder-only model. The sentence representation is its first ([CLS]) token (Sec. III.C.1,
    DistilBERT), or the mean of the real tokens (how sentence-transformers models such as MiniLM were trained).

    Frozen layers (:meth:`freeze_bottom`) stay in eval mode when the model trains: a frozen layer with dropout on
    would only add noise, and in eval mode it gives the same output for the same text.

    Args:
        model: a ``transformers`` model whose output has ``last_hidden_state``.
        pooling: ``"cls"`` or ``"mean"``.
    """

    def __init__(self, model: nn.Module, pooling: str = "cls") -> None:
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise ConfigError(f"model.text.pooling {pooling!r}; choose one of {', '.join(TEXT_POOLINGS)}")
        self.model = model
        self.pooling = pooling
        self.hidden_size = int(model.config.hidden_size)
        self._frozen: list[nn.Module] = []

    def train(self, mode: bool = True) -> HFTextEncoder:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    @classmethod
    def from_run_config(cls, config: RunConfig) -> tuple[HFTextEncoder, Any]:
        from transformers import AutoConfig, AutoModel

        text = config.model.text
        if text.pretrained:
            source = resolve_pretrained(text.pretrained)
            tokenizer = load_tokenizer(text.tokenizer or text.pretrained)
            try:
                hf_config = AutoConfig.from_pretrained(source)
                _set_dropout(hf_config, text.dropout)
                model = AutoModel.from_pretrained(source, config=hf_config)
            except (OSError, ValueError) as error:
                raise ConfigError(
                    f"cannot load pretrained text encoder {text.pretrained!r}: {_hint(source)} ({error})"
                ) from None
            return cls(model, text.pooling), tokenizer
        if not text.tokenizer:
            raise ConfigError("model.text: a random-init text encoder needs model.text.tokenizer (e.g. minilm-offline)")
        tokenizer = load_tokenizer(text.tokenizer)
        if text.hidden_size % text.num_attention_heads:
            raise ConfigError(
                f"model.text.hidden_size {text.hidden_size} is not divisible by num_attention_heads "
                f"{text.num_attention_heads}"
            )
        try:
            hf_config = AutoConfig.for_model(text.model_type, vocab_size=len(tokenizer))
        except ValueError:
            raise ConfigError(f"model.text.model_type {text.model_type!r} is not a transformers model type") from None
        # Through attribute_map these names also reach DistilBERT's dim / n_layers / n_heads.
        hf_config.hidden_size = text.hidden_size
        hf_config.num_hidden_layers = text.num_hidden_layers
        hf_config.num_attention_heads = text.num_attention_heads
        hf_config.max_position_embeddings = max(getattr(hf_config, "max_position_embeddings", 0), text.max_length)
        for ffn_attribute in ("intermediate_size", "hidden_dim"):  # DistilBERT calls its FFN width hidden_dim
            if hasattr(hf_config, ffn_attribute):
                setattr(hf_config, ffn_attribute, text.intermediate_size)
        if getattr(tokenizer, "pad_token_id", None) is not None:
            hf_config.pad_token_id = tokenizer.pad_token_id
        _set_dropout(hf_config, text.dropout)
        return cls(AutoModel.from_config(hf_config), text.pooling), tokenizer

    @classmethod
    def from_tower_config(cls, config: RunConfig, tower_config: dict[str, Any]) -> HFTextEncoder:
        from transformers import AutoModel
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        model_type = tower_config.get("model_type")
        if model_type not in CONFIG_MAPPING:
            raise ValueError(f"unknown text model_type {model_type!r}")
        hf_config = CONFIG_MAPPING[model_type].from_dict(tower_config)
        return cls(AutoModel.from_config(hf_config), config.model.text.pooling)

    def tower_config(self) -> dict[str, Any]:
        return self.model.config.to_dict()

    def freeze_bottom(self, num_layers: int) -> None:
        """Stop training the embeddings and the ``num_layers`` lowest layers (-1: everything).

        Frozen bottom layers also cost no backward pass: autograd starts at the first trainable layer. With the
        fine-grained heads the text tower runs five times a step (caption, two queries, two targets), so this is
        the main lever on training time when the video tower is small.
        """
        if num_layers == 0:
            return
        layers = _transformer_layers(self.model)
        if num_layers < 0 or num_layers >= len(layers):
            self._frozen = [self.model]
        else:
            embeddings = getattr(self.model, "embeddings", None)
            if embeddings is None:
                raise ConfigError(
                    f"model.text.freeze_layers: cannot find the embeddings of {type(self.model).__name__}"
                )
            self._frozen = [embeddings, *layers[:num_layers]]
        for module in self._frozen:
            module.requires_grad_(False)
        self.train(self.training)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> TextEncoderOutput:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, L, D]
        mask = attention_mask.to(torch.bool)
        if self.pooling == "mean":
            weights = mask.to(hidden.dtype)[..., None]  # [B, L, 1]
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:
            pooled = hidden[:, 0]
        return TextEncoderOutput(tokens=hidden, token_mask=mask, cls=hidden[:, 0], pooled=pooled)


def _transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of a BERT-like (``encoder.layer``) or DistilBERT (``transformer.layer``) model."""
    for path in ("encoder.layer", "transformer.layer"):
        module: Any = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ConfigError(f"model.text.freeze_layers: cannot find the layers of {type(model).__name__}")
