"""Every knob of a training run, checked before any work: ``TrainConfig``.

``tinyllm train``'s options are its fields (train_command.py makes one of each), a checkpoint
keeps the config its run was started with, and ``--resume`` compares against it. A value
that would crash mid-run, quietly train nothing or go unused is refused here, by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .amp import dtype_of
from .backend import check_device, default_device
from .data import BPE_VOCAB_SIZE
from .model import GPTConfig


@dataclass
class TrainConfig:
    """Every knob of a run. The defaults train a small char-level GPT on ``pydoc`` in minutes on 2 cores."""
    data: str = "pydoc"            # "pydoc", a text file or an http(s) URL
    data_sha256: str | None = None # expected sha256 of the corpus file or download
    tokenizer: str = "char"        # "char", "bpe" or a tokenizer JSON file
    vocab_size: int | None = None  # for a new BPE tokenizer; None: BPE_VOCAB_SIZE
    preset: str = "baby"           # model shape (see GPTConfig.from_preset)
    n_layer: int | None = None     # overrides of the preset
    n_head: int | None = None
    n_embd: int | None = None
    block_size: int | None = None
    dropout: float = 0.0
    device: str = field(default_factory=default_device)  # "cpu", or TINYLLM_DEVICE when set
    tf32: bool = False             # GPU only: TF32 tensor cores for float32 matmuls
    dtype: str = "float32"         # "float16" or "bfloat16": mixed precision, the matrix products in 16 bits (amp.py)
    batch_size: int = 12
    grad_accum: int = 1            # micro-batches per optimizer step
    max_iters: int = 1000
    lr: float = 1e-3
    min_lr: float | None = None    # the cosine's end; None: lr / 10 (nanoGPT's rule of thumb)
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 50
    sample_interval: int = 250
    sample_tokens: int = 120
    seed: int = 1337
    out: str = "out"
    resume: bool = False           # continue from OUT/ckpt.npz where it left off (--help says how exactly)
    init_from: str | None = None   # fine-tune: start from this checkpoint or GPT-2 download's model and tokenizer
    lora_rank: int = 0             # with init_from: train LoRA adapters of this rank instead of every weight
    lora_alpha: float = 16.0       # LoRA's update is scaled by lora_alpha / lora_rank
    lora_targets: str = "c_attn"   # the Linear layers LoRA adapts, by name, comma-separated
    instructions: str | None = None  # with init_from: instruction-tune on this JSONL file (instruct.py)

    def __post_init__(self) -> None:
        """Fill in the defaults that follow other settings (min_lr, vocab_size), and refuse, before
        any work, settings that would crash mid-run, quietly train nothing or go unused."""
        def refuse(name: str, rule: str) -> None:
            raise ValueError(f"{name} (--{name.replace('_', '-')}) must be {rule}, got {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "eval_iters", "eval_interval", "log_interval", "sample_interval"):
            if getattr(self, name) < 1:
                refuse(name, "at least 1")
        for name in ("n_layer", "n_head", "n_embd", "block_size"):      # None: the preset's
            if getattr(self, name) is not None and getattr(self, name) < 1:
                refuse(name, "at least 1")
        if not self.lr > 0:
            refuse("lr", "positive")
        if self.min_lr is None:
            self.min_lr = self.lr / 10
        for name in ("max_iters", "warmup_iters", "sample_tokens", "min_lr", "weight_decay", "grad_clip", "lora_rank"):
            if getattr(self, name) < 0:
                refuse(name, "0 or more")
        for name in ("lora_rank", "instructions"):
            if getattr(self, name) and not (self.init_from or self.resume):
                raise ValueError(f"--{name.replace('_', '-')} adapts a trained model: give it one with --init-from")
        if self.min_lr > self.lr:   # the cosine would then raise the learning rate as it "decays"
            refuse("min_lr", f"at most --lr ({self.lr}), where the cosine decay starts")
        if not 0 <= self.beta2 < 1:
            refuse("beta2", "in [0, 1)")
        if self.vocab_size is not None and self.tokenizer != "bpe" and not self.init_from:
            # a char tokenizer's vocabulary is the corpus's characters; a tokenizer file has its own
            refuse("vocab_size", f"left out with --tokenizer {self.tokenizer}: it sizes a new BPE tokenizer only")
        if self.vocab_size is None:
            self.vocab_size = BPE_VOCAB_SIZE
        if self.init_from:
            for name in ("n_layer", "n_head", "n_embd"):
                if getattr(self, name) is not None:
                    refuse(name, "left out with --init-from, whose model has its own shape")
        check_device(self.device)
        dtype_of(self.dtype)    # a known name, and ml_dtypes there for bfloat16

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The preset's shape with this run's overrides, for a tokenizer of ``vocab_size``."""
        overrides = {k: v for k in ("n_layer", "n_head", "n_embd", "block_size") if (v := getattr(self, k)) is not None}
        return GPTConfig.from_preset(self.preset, vocab_size=vocab_size, dropout=self.dropout, **overrides)
