"""The training loop: batch -> forward -> loss -> backward -> clip -> step -> log.

``train_step`` is one step (lesson 09 builds it); ``train(TrainConfig(...))`` is a whole run,
every knob of which is a field of ``TrainConfig`` (train_config.py).

Every ``eval_interval`` steps: the mean loss on a few train and validation
batches (``estimate_loss``), a checkpoint, and a refreshed loss-curve PNG beside
it. Every ``sample_interval`` steps: a short sample, so you can watch gibberish
turn into text. A loss that turns nan or inf (a learning rate too high) stops the
run at the next number it reads, before a checkpoint could keep broken weights.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from . import optim
from .amp import GradScaler, autocast, check_products_on
from .backend import cpu_threads, manual_seed, reseed, rng as backend_rng, set_tf32, xp_for
from .checkpoint import checkpoint_path, load_checkpoint, load_optimizer_state, save_checkpoint, weights_sha256
from .data import TokenBatches, encode_corpus, load_corpus, make_tokenizer
from .distributed import SINGLE_PROCESS, RankBatches, World, world_from_environment
from .instruct import InstructionBatches, read_instructions
from .lora import apply_lora, lora_settings
from .metrics import flops_per_token, gemm_peak_flops
from .model import GPT, GPTConfig
from .plots import plot_losses
from .sample import document_start, generate
from .tensor import Tensor, no_grad
from .train_config import TrainConfig


def accumulate_gradients(model: GPT, batches: TokenBatches, batch_size: int, grad_accum: int,
                         rng: np.random.Generator) -> Tensor:
    """Forward and backward ``grad_accum`` random training batches of ``batch_size``, adding
    their gradients into ``.grad``: the same gradient as one batch of ``grad_accum·batch_size``
    sequences (the mean over all its tokens), in the memory of one micro-batch. Returns the
    last micro-batch's loss, unread (reading it would wait for a GPU)."""
    # BEGIN EXERCISE 9.5: forward and backward grad_accum batches, each loss scaled by 1/grad_accum
    for _ in range(grad_accum):
        x, y = batches.get_batch("train", batch_size, rng)
        _, loss = model(x, y)
        (loss * (1.0 / grad_accum)).backward()  # each micro-batch's mean counts 1/grad_accum of the whole
    return loss
    # END EXERCISE


def train_step(model: GPT, opt: optim.Optimizer, batches: TokenBatches, batch_size: int,
               rng: np.random.Generator, grad_accum: int = 1, grad_clip: float = 1.0,
               world: World = SINGLE_PROCESS) -> tuple[Tensor, np.ndarray]:
    """One optimizer step at ``opt.lr``: forget the last gradients, find this batch's, clip
    their global norm to ``grad_clip`` (0: measured, not clipped), and step. Returns the loss
    (a Tensor) and the gradient norm before clipping (a 0-d array), both unread: reading
    them would wait for a GPU. With several processes (``world``, tinyllm/distributed.py), the
    gradients are averaged over them before the clip: one process alone has nothing to do there."""
    # BEGIN EXERCISE 9.6: one training step: zero_grad, gradients (accumulate_gradients), clip, step
    opt.zero_grad()
    loss = accumulate_gradients(model, batches, batch_size, grad_accum, rng)
    world.average_gradients(model.parameters())   # data parallel: the mean over the processes
    norm = optim.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
    opt.step()
    return loss, norm
    # END EXERCISE


def scaled_train_step(model: GPT, opt: optim.Optimizer, batches: TokenBatches, batch_size: int,
                      rng: np.random.Generator, grad_accum: int, grad_clip: float, world: World,
                      scaler: GradScaler) -> tuple[Tensor, np.ndarray]:
    """``train_step`` for float16 (amp.py): each micro-batch's loss scaled up by ``scaler.scale``
    before its backward, so that small gradients survive the 16-bit products; the gradients
    scaled back down before the clip; a step whose gradients overflowed is skipped (and the
    scale halved: ``scaler.update``)."""
    opt.zero_grad()
    for _ in range(grad_accum):
        x, y = batches.get_batch("train", batch_size, rng)
        _, loss = model(x, y)
        with np.errstate(over="ignore", invalid="ignore"):   # a 16-bit product overflowing to inf (and
            (loss * (scaler.scale / grad_accum)).backward()   # nan after it) is what the scaler looks for
    world.average_gradients(model.parameters())
    finite = scaler.unscale_(model.parameters())      # the same on every rank: the gradients are the average
    norm = optim.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
    if finite:
        opt.step()
    scaler.update(finite)
    return loss, norm


@no_grad()
def estimate_loss(model: GPT, batches: TokenBatches, batch_size: int, iters: int,
                  rng: np.random.Generator) -> dict[str, float]:
    """Mean loss over ``iters`` random batches of each split, with dropout off (the mode restored after)."""
    with model.evaluating():
        return {split: float(np.mean([model(*batches.get_batch(split, batch_size, rng))[1].item()
                                      for _ in range(iters)])) for split in ("train", "val")}


def _check_same_architecture(saved: GPTConfig, asked_for: GPTConfig, out: str) -> None:
    asked = asked_for.to_dict()
    differ = {k: (v, asked[k]) for k, v in saved.to_dict().items() if asked[k] != v}
    if differ:
        what = ", ".join(f"{k} {a} in the checkpoint but {b} asked for" for k, (a, b) in differ.items())
        raise ValueError(f"cannot resume from {checkpoint_path(out)}: it holds another architecture ({what})")


def _duration(seconds: float) -> str:
    """3 s -> "3s", 185 s -> "3m05s", 7500 s -> "2h05m"."""
    s = round(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def _reseed_gpu_dropout(cfg: TrainConfig, step: int) -> None:
    """On a GPU, dropout's generator restarts at each checkpoint from (seed, step): its state
    cannot be saved, and this way a run resumed from the checkpoint draws the same masks."""
    if cfg.device == "cuda":
        reseed(xp_for("cuda"), [cfg.seed, step])


def _stop_if_diverged(cfg: TrainConfig, step: int, saved_step: int | None, values: dict[str, float]) -> None:
    """Stop a run whose loss or gradient norm became inf or nan (most often: too high a learning
    rate) before its next checkpoint overwrites the last good weights with broken ones."""
    broken = ", ".join(f"{name} {value}" for name, value in values.items() if not math.isfinite(value))
    if broken:
        kept = "no checkpoint was written" if saved_step is None else \
            f"{checkpoint_path(cfg.out)} still holds step {saved_step}"
        clip = "" if cfg.grad_clip else ", or clip gradients (--grad-clip 1)"
        raise RuntimeError(f"training diverged at step {step}: {broken}. {kept}; "
                           f"try a lower --lr (this run's: {cfg.lr:g}){clip}")


def _batches(cfg: TrainConfig, text: str, tokenizer, block_size: int, log: Callable[[str], None]):
    """The data the run trains on, as batches, and the tokens in one of its sequences (on average):
    the corpus' windows, or with ``cfg.instructions`` its examples (loss on the answers only)."""
    if cfg.instructions:
        batches = InstructionBatches(read_instructions(cfg.instructions), tokenizer, block_size, device=cfg.device)
        log(f"instructions {cfg.instructions}: {len(batches.splits['train'])} training and "
            f"{len(batches.splits['val'])} validation examples, the loss on the answers only"
            + (f"; {batches.cut} left out, their prompts longer than the context" if batches.cut else ""))
        return batches, batches.mean_length
    try:
        ids = encode_corpus(text, tokenizer, cache=True)
    except ValueError as e:
        if not cfg.init_from:
            raise
        raise ValueError(f"{e}. --init-from keeps the tokenizer of {cfg.init_from}, which cannot encode "
                         f"{cfg.data}: remove those characters from it, or fine-tune a model with a byte-level "
                         "BPE tokenizer (GPT-2's encodes any text)") from None
    log(f"corpus {cfg.data}: {len(text):,} characters -> {len(ids):,} tokens (vocabulary {tokenizer.vocab_size})")
    return TokenBatches(ids, block_size, device=cfg.device), block_size


def train(cfg: TrainConfig, log: Callable[[str], None] = print, world: World | None = None) -> dict:
    """Run training as ``cfg`` says; returns the loss history (a resumed run's from its first step).
    Checkpoints go to ``cfg.out``. ``world``: the processes training together (default: those
    ``mpiexec`` started, or this one alone); rank 0 logs and writes, every rank returns the history."""
    world = world or world_from_environment(cfg.device)
    if not world.is_main:
        log = lambda line: None  # noqa: E731  (rank 0 speaks for all)
    world.check_same_everywhere("the training config", repr(sorted(asdict(cfg).items())))
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {cfg.out} is a file; it must be a directory (for ckpt.npz and loss.png)")
    if cfg.tf32:
        if cfg.device != "cuda":
            raise ValueError("--tf32 is a GPU setting: use it with --device cuda")
        set_tf32(True)
    check_products_on(cfg.device, cfg.dtype)
    started = time.perf_counter()
    manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # batches and loss estimates; dropout uses backend.rng
    text = load_corpus(cfg.data, cfg.data_sha256) if not cfg.instructions else ""
    first_step, saved_step = 0, None
    lora_base = None  # with LoRA: the base model's path and fingerprint, for the checkpoints
    source = cfg.init_from or cfg.preset  # where the model came from, for the log
    if cfg.resume:
        ckpt = load_checkpoint(checkpoint_path(cfg.out), device=cfg.device, keep_lora=True)  # a tinyllm run
        model, tokenizer, first_step = ckpt["model"], ckpt["tokenizer"], ckpt["step"]
        saved_rank = ckpt["meta"].get("lora", {}).get("rank", 0)
        if cfg.lora_rank and cfg.lora_rank != saved_rank:
            raise ValueError(f"cannot resume from {checkpoint_path(cfg.out)} with --lora-rank {cfg.lora_rank}: "
                             f"it trains {f'LoRA rank {saved_rank}' if saved_rank else 'every weight'}")
        if saved_rank:
            lora_base = {k: ckpt["meta"]["lora"][k] for k in ("base", "base_sha256")}
        saved_step = first_step
        fine_tuned = cfg.init_from or ckpt["meta"].get("train_config", {}).get("init_from")
        source = fine_tuned or cfg.preset
        if not fine_tuned:  # (a fine-tuned model's shape is its starting model's, not a preset's)
            _check_same_architecture(model.config, cfg.model_config(tokenizer.vocab_size), cfg.out)
        if ckpt["meta"].get("world_size", 1) != world.size:
            raise ValueError(f"{checkpoint_path(cfg.out)} was written by a run of {ckpt['meta'].get('world_size', 1)} "
                             f"process(es); resume it with as many (this run has {world.size}): each draws its "
                             "share of the batch from one random stream, which a different count would not continue")
        if first_step >= cfg.max_iters:
            raise ValueError(f"{checkpoint_path(cfg.out)} is at step {first_step} already: to train on, "
                             f"give --max-iters above {first_step}")
        rng.bit_generator.state = ckpt["meta"]["rng"]["batches"]
        backend_rng(np).bit_generator.state = ckpt["meta"]["rng"]["dropout"]
        _reseed_gpu_dropout(cfg, first_step)
        log(f"resuming from {checkpoint_path(cfg.out)} at step {first_step}")
    elif cfg.init_from:
        ckpt = load_checkpoint(cfg.init_from, device=cfg.device)
        model, tokenizer = ckpt["model"], ckpt["tokenizer"]
        if "quantized" in ckpt["meta"]:
            raise ValueError(f"{cfg.init_from} holds a quantized model, which computes but does not train: "
                             "fine-tune the float checkpoint it was made from")
        if cfg.block_size is not None and cfg.block_size > model.config.block_size:
            raise ValueError(f"--block-size {cfg.block_size} is longer than the context of {cfg.init_from}'s "
                             f"model ({model.config.block_size} tokens): it can only be cropped")
        if cfg.block_size is not None:
            model.crop_block_size(cfg.block_size)
        model.set_dropout(cfg.dropout)
        log(f"fine-tuning the model of {cfg.init_from} (step {ckpt['step']} there), with its tokenizer")
        if cfg.lora_rank:
            base = Path(cfg.init_from)
            lora_base = {"base": str(base.resolve()) if base.exists() else cfg.init_from,
                         "base_sha256": weights_sha256(model)}
            apply_lora(model, cfg.lora_rank, cfg.lora_alpha, [t.strip() for t in cfg.lora_targets.split(",")])
    else:
        tokenizer = make_tokenizer(cfg.tokenizer, text, cfg.vocab_size, verbose=True)
        model = GPT(cfg.model_config(tokenizer.vocab_size)).to(cfg.device)
    config = model.config
    batches, tokens_per_sequence = _batches(cfg, text, tokenizer, config.block_size, log)
    if world.size > 1:
        world.check_same_everywhere("the initial weights", weights_sha256(model))
        batches = RankBatches(batches, world)
        threads = cpu_threads() if cfg.device == "cpu" else None      # (None: a BLAS other than OpenBLAS)
        log(f"data parallel: {world.size} processes, {cfg.batch_size} sequences each per micro-batch"
            + (f", {threads} BLAS thread{'s' if threads > 1 else ''} each" if threads else ""))
    trainable = [p for p in model.parameters() if p.requires_grad]  # with LoRA: the adapters only
    opt = optim.AdamW(trainable, lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay)
    scaler = GradScaler() if cfg.dtype == "float16" else None   # bfloat16 has float32's range: no scaling
    if scaler and cfg.resume and "loss_scaler" in ckpt["meta"]:
        vars(scaler).update(ckpt["meta"]["loss_scaler"])
    if cfg.dtype != "float32":
        log(f"mixed precision: the Linear layers' and attention's products in {cfg.dtype}, the rest and the "
            "weights in float32"
            + (f"; loss scaling from {scaler.scale:g}" if scaler else "")
            + ("; slow on a CPU (NumPy has no 16-bit BLAS): made for GPUs" if cfg.device == "cpu" else ""))
    if cfg.resume and ckpt["optimizer_state"] is None:
        log(f"{checkpoint_path(cfg.out)} holds no optimizer state: AdamW starts afresh (its moments at 0)")
    elif cfg.resume:
        load_optimizer_state(opt, model, ckpt["optimizer_state"])
    n_params = model.num_parameters()
    tokens_per_step = round(cfg.batch_size * cfg.grad_accum * tokens_per_sequence * world.size)
    peak = gemm_peak_flops(device=cfg.device)
    log(f"model {source}: {n_params:,} parameters, {config.n_layer} layers, "
        f"{config.n_head} heads, {config.n_embd} wide, context {config.block_size}; "
        f"{tokens_per_step:,} tokens per step on {cfg.device}")
    if lora_base:
        lora, n_trained = lora_settings(model), sum(p.size for p in trainable)
        log(f"LoRA rank {lora['rank']}, alpha {lora['alpha']:g} on {len(lora['targets'])} layers: "
            f"{n_trained:,} parameters train ({n_trained / n_params:.2%}), the rest are frozen; "
            f"checkpoints hold the adapters, for the base {lora_base['base']}")
    if cfg.warmup_iters >= cfg.max_iters > first_step:   # a short trial run, most likely: say what it means
        last_lr = optim.cosine_lr(cfg.max_iters - 1, cfg.lr, cfg.min_lr, cfg.warmup_iters, cfg.max_iters)
        log(f"note: the run ends inside its warmup (--warmup-iters {cfg.warmup_iters}, --max-iters "
            f"{cfg.max_iters}): the learning rate climbs to {last_lr:.2e}, never to --lr {cfg.lr:g}")
    out.mkdir(parents=True, exist_ok=True)
    history = {"step": [], "loss": [], "eval_step": [], "train": [], "val": []}
    if cfg.resume:   # the curve goes on from where the checkpoint's run left it (loss.png shows it all)
        history = {key: list(values) for key, values in ckpt["meta"].get("history", history).items()}
    prompt = document_start(tokenizer)   # the samples shown start a fresh text

    for step in range(first_step, cfg.max_iters + 1):
        last = step == cfg.max_iters
        # (a resumed run skips the evaluation its checkpoint was written after: it drew random batches)
        if (step % cfg.eval_interval == 0 or last) and not (cfg.resume and step == first_step):
            with autocast(cfg.dtype):
                losses = estimate_loss(model, batches, cfg.batch_size, cfg.eval_iters, rng)
            losses = {split: world.mean(loss) for split, loss in losses.items()}   # each rank scored its share
            _stop_if_diverged(cfg, step, saved_step, {"train loss": losses["train"], "val loss": losses["val"]})
            history["eval_step"].append(step)
            history["train"].append(losses["train"])
            history["val"].append(losses["val"])
            log(f"step {step:5d} | eval: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            random_states = {"batches": rng.bit_generator.state, "dropout": backend_rng(np).bit_generator.state}
            extra = {"train_config": asdict(cfg), "rng": random_states, "history": history, "world_size": world.size,
                     **({"loss_scaler": vars(scaler)} if scaler else {}),
                     **({"lora": lora_base} if lora_base else {})}
            if world.is_main:
                save_checkpoint(out, model, opt, tokenizer, step, extra)
                plot_losses(history, out / "loss.png")
            saved_step = step
            _reseed_gpu_dropout(cfg, step)
        if cfg.sample_tokens and world.is_main and step > first_step and (step % cfg.sample_interval == 0 or last):
            with model.evaluating():
                sample = tokenizer.decode(generate(model, prompt, cfg.sample_tokens, temperature=0.8, seed=step))
            log("---- sample ----\n" + sample + "\n----------------")
        if last:
            break

        step_began = time.perf_counter()
        opt.lr = optim.cosine_lr(step, cfg.lr, cfg.min_lr, cfg.warmup_iters, cfg.max_iters)
        with autocast(cfg.dtype):
            if scaler:
                loss, norm = scaled_train_step(model, opt, batches, cfg.batch_size, rng, cfg.grad_accum,
                                               cfg.grad_clip, world, scaler)
            else:
                loss, norm = train_step(model, opt, batches, cfg.batch_size, rng, cfg.grad_accum, cfg.grad_clip, world)
        if step == first_step:
            began = time.perf_counter()   # the clock for the time left: after the first step's warm-up
        if step % cfg.log_interval == 0:
            loss_value = world.mean(loss.item())  # reading the loss waits for the device: only when logging
            # (a float16 step skipped for an overflow has an infinite norm by design: the scaler deals with it)
            checked = {"loss": loss_value} | ({} if scaler and not scaler.last_finite else {"grad norm": float(norm)})
            _stop_if_diverged(cfg, step, saved_step, checked)
            seconds = time.perf_counter() - step_began
            tok_s = tokens_per_step / seconds
            mfu = flops_per_token(config, n_params) * tok_s / (peak * world.size)   # each rank has its own peak
            history["step"].append(step)
            history["loss"].append(loss_value)
            # time left: the mean time of a step since the first (evaluations included) × the steps to come
            left = (time.perf_counter() - began) / max(step - first_step, 1) * (cfg.max_iters - step - 1)
            log(f"step {step:5d} | loss {loss_value:.4f} | lr {opt.lr:.2e} | grad norm {float(norm):.3f} | "
                f"{seconds * 1e3:6.1f} ms/step | {tok_s:8,.0f} tokens/s | MFU {mfu:.0%}"
                + (f" | loss scale {scaler.scale:g}" if scaler else "")
                + (f" | {_duration(left)} left" if step > first_step else ""))
    log(f"trained {cfg.max_iters - first_step} steps in {_duration(time.perf_counter() - started)}; "
        f"checkpoint: {checkpoint_path(out)}   loss curve: {out / 'loss.png'}")
    return history
