"""The smallest run configs the tests build: 1-layer towers of width 32, on 4 frames of 32 px, no network."""

TINY_MODEL = [
    "model.video.patch_size=8",
    "model.video.hidden_size=32",
    "model.video.num_hidden_layers=1",
    "model.video.num_attention_heads=2",
    "model.video.intermediate_size=64",
    "model.text.pretrained=null",
    "model.text.tokenizer=minilm-offline",
    "model.text.freeze_layers=0",
    "model.text.hidden_size=32",
    "model.text.num_hidden_layers=1",
    "model.text.num_attention_heads=2",
    "model.text.intermediate_size=64",
    "model.embed_dim=16",
    "data.num_frames=4",
    "data.image_size=32",
    "data.num_workers=0",
    # The demo config's speed settings, pinned: float32 gives the same numbers on every CPU (whether or not it
    # has bfloat16), and the decoded-clip cache is tested on its own.
    "data.decoded_cache=false",
    "train.precision=fp32",
]
