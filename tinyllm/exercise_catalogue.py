"""Every exercise's tests and hint: what ``tinyllm exercises check`` runs and ``hint`` prints.

The exercises themselves are regions of the package's code (exercises.py finds them by their
``# BEGIN EXERCISE`` comments); this table gives each id the pytest node ids that cover it
(from the project root) and a longer hint than its one-line title. Exercise N.x is lesson N's.
"""
from __future__ import annotations

_GRAD = "tests/test_ops_gradcheck.py::test_gradcheck"
# id -> (the tests that cover it, a longer hint). Test ids are pytest node ids from the project root.
CATALOGUE: dict[str, tuple[list[str], str]] = {
    "1.1": ([f"{_GRAD}[exp]", f"{_GRAD}[neg]", f"{_GRAD}[sqrt]"],
            "Depth-first from the output: a node goes into the order after all its parents. Use an "
            "explicit stack of (node, parents_done) pairs instead of recursion, and a set of ids seen."),
    "1.2": ([f"{_GRAD}[mul(3, 4)(3, 4)]", "tests/test_tensor.py::test_chain_rule_by_hand"],
            "out = a·b. The gradient for a is g·b, for b it is g·a; pass each through sum_to_shape(..., "
            "x.shape) and return None for an input that does not require grad."),
    "1.3": ([f"{_GRAD}[tanh]"], "Reuse the forward's output: d tanh(a)/da = 1 - out². Return a 1-tuple."),
    "2.1": (["tests/test_tensor.py::test_sum_to_shape_undoes_broadcasting", f"{_GRAD}[add(2, 1, 3)(4, 3)]",
             f"{_GRAD}[mul(3, 1)(1, 4)]"],
            "Broadcasting may add axes in front (sum them away) and stretch axes of size 1 (sum them "
            "with keepdims). Then reshape to the target shape."),
    "2.2": ([f"{_GRAD}[sum_all]", f"{_GRAD}[sum_axis0]", f"{_GRAD}[sum_axes_keep]"],
            "Every input element contributed with slope 1, so each gets g. Put the summed axes back "
            "(the helper _expand_like does that) and broadcast to a.shape."),
    "2.3": ([f"{_GRAD}[matmul_2d]", f"{_GRAD}[matmul_batched]", f"{_GRAD}[matmul_broadcast]",
             f"{_GRAD}[matmul_shared_weight]"],
            "For C = A @ B: dA = g @ Bᵀ and dB = Aᵀ @ g (swap the last two axes). When B is a shared "
            "2-D weight and A is batched, fold A's batch axes into rows so dB is one GEMM summed over "
            "the batch; otherwise sum_to_shape undoes broadcast batch axes."),
    "3.1": ([f"{_GRAD}[relu]"], "Multiply g by the mask (a > 0)."),
    "3.2": (["tests/test_optim.py::test_sgd_with_momentum_by_hand"],
            "g holds every gradient, laid out like self.flat (all parameters in one array). With momentum, "
            "keep one buffer v (self._buffer), v = μ·v + g in place, and step with v: self.flat -= lr·v. "
            "Without momentum the step is self.flat -= lr·g."),
    "3.3": (["tests/test_build_the_gpt.py::test_linear_by_hand"],
            "A layer of n_out neurons on n_in inputs: out = x Wᵀ + b with W (n_out, n_in). x may be (..., n_in): "
            "reshape x.data to (N, n_in) rows (keep it as x2: the backward reads it), multiply by weight.data.T, "
            "add bias.data when there is one. The last line reshapes out to (..., n_out)."),
    "3.4": ([f"{_GRAD}[linear]", f"{_GRAD}[linear_no_bias]"],
            "out = x2 Wᵀ + b is a matmul and a broadcast add (lesson 02): with g2 = g as (N, n_out) rows, "
            "dx = g2 @ W (reshaped to x.shape), dW = g2ᵀ @ x2, db = g2 summed over its rows (column_sums). "
            "Return (dx, dW) or (dx, dW, db); None for an input that does not require grad."),
    "4.1": (["tests/test_build_the_gpt.py::test_log_softmax_by_hand"],
            "log softmax(x) = x - log Σ e^x. Subtract the max along the axis first (the result is the same, "
            "and e^x cannot overflow): shifted = x - max; y = shifted - log(Σ e^shifted), the sum with keepdims "
            "(_sum_along(a, axis) is a.sum(axis, keepdims=True))."),
    "4.2": ([f"{_GRAD}[log_softmax]"], "y = x - logΣe^x, so dx = g - softmax(x)·Σg, and softmax(x) = e^y."),
    "4.3": ([f"{_GRAD}[cross_entropy]", f"{_GRAD}[cross_entropy_3d_ignore]",
             "tests/test_functional.py::test_cross_entropy_by_hand"],
            "softmax_z is softmax(z) (kept by the forward, or made again on a GPU). dz = softmax_z · g / count "
            "for every counted row, minus g / count at each row's target; rows with ignore_index get 0."),
    "5.1": (["tests/test_tokenizer.py::test_merge_pair_scans_left_to_right"],
            "Walk i from 0: where ids[i], ids[i+1] is the pair, emit new_id and jump 2; else emit ids[i]."),
    "5.2": (["tests/test_tokenizer.py::test_fast_trainer_equals_textbook_trainer"],
            "Subtract the word's frequency from each of its old pairs, add it to each new pair; words "
            "gain index entries only for pairs containing new_id, and lose those of pairs that vanished."),
    "5.3": (["tests/test_tokenizer.py::test_encode_merges_by_rank_not_by_position",
             "tests/test_tokenizer.py::test_hand_computed_merges"],
            "Start from the byte ids (self.byte_ids[b] for each UTF-8 byte of word). Then repeat: among the "
            "adjacent pairs, take the one whose merge was learned first (lowest rank in self.ranks, which maps "
            "a pair to (rank, new_id)); if no pair is a merge, stop; else ids = merge_pair(ids, pair, new_id)."),
    "6.1": ([f"{_GRAD}[slice]", f"{_GRAD}[gather_rows]", f"{_GRAD}[gather_pairs]"],
            "Start from zeros shaped like a. A slice: assign g into grad[index]. Integer arrays may read "
            "one row twice, so use scatter_add (np.add.at) to add, not assign."),
    "6.2": (["tests/test_build_the_gpt.py::test_embedding_looks_up_rows", f"{_GRAD}[gather_rows]"],
            "Row i of self.weight is the vector of id i: indexing the Tensor with the ids array, "
            "self.weight[ids], gives (B, T, C) for (B, T) ids, and its backward is exercise 6.1's."),
    "7.1": (["tests/test_build_the_gpt.py::test_softmax_by_hand"],
            "y = e^x / Σ e^x along the axis. Subtract the max first (same result, no overflow). With a mask, "
            "first add _mask_bias(mask, x) (-inf where masked) so those entries become e^-inf = 0; a row masked "
            "everywhere must give 0s, not nan: subtract max(row max, xp.finfo(dtype).min) and divide by "
            "max(sum, xp.finfo(dtype).tiny). Sum with _sum_along(y, axis); return a new array (x must not change)."),
    "7.2": ([f"{_GRAD}[softmax]", f"{_GRAD}[softmax_axis0]", f"{_GRAD}[softmax_causal_mask]"],
            "dx = y·(g - Σ g·y) along the axis, with y the forward's output."),
    "7.3": (["tests/test_functional.py::test_attention_weights_by_hand"],
            "scores = (q / √D) @ kᵀ (k.swapaxes(-2, -1)), shape (..., T, S); when is_causal the mask is "
            "causal_mask(T, S, array_module(q)); then _softmax_forward(scores, -1, mask)."),
    "7.4": ([f"{_GRAD}[attention]", f"{_GRAD}[attention_causal]", f"{_GRAD}[attention_causal_cache]",
             "tests/test_functional.py::test_fused_attention_equals_its_five_ops[0.0]"],
            "Go back through y = A v, A = drop(P), P = softmax(s): dv = drop(P)ᵀ @ g; dA = g @ vᵀ, and "
            "drop(dA) is dP; ds = _softmax_backward(P, dP); s = q kᵀ/√D gives dq = ds @ k/√D and "
            "dk = dsᵀ @ q/√D. q, k, v are the arrays q_data, k_data, v_data (P is att). Swap the last two "
            "axes with .swapaxes(-2, -1)."),
    "7.5": (["tests/test_build_the_gpt.py::test_attention_layer_by_hand"],
            "x (B, T, C), H = n_head heads of D = C/H. c_attn(x) is (B, T, 3C): reshape to (B, T, 3, H, D) and "
            "split(1, axis=2) into q, k, v; give each head its slab, (B, T, H, D) -> transpose(1, 2) -> (B, H, T, D). "
            "Then k, v = self.remember(q, k, v, cache) (it returns them unchanged in training). "
            "y = F.scaled_dot_product_attention(q, k, v, is_causal=self.is_causal, dropout_p=self.attn_dropout.p "
            "if self.training else 0.0) (is_causal is True in a GPT); (B, H, T, D) -> transpose(1, 2) -> reshape "
            "(B, T, C); c_proj, resid_dropout."),
    "8.1": (["tests/test_functional.py::test_layer_norm_by_hand",
             "tests/test_functional.py::test_layer_norm_output_is_normalised"],
            "Along the last axis (C of them): μ = row_sums(x)/C, xhat = x - μ, rstd = 1/√(row_sums(xhat²)/C + eps), "
            "xhat *= rstd. y = xhat·weight + bias, each only when given (without weight y is a copy of xhat). "
            "The backward reads xhat and rstd: keep those names."),
    "8.2": ([f"{_GRAD}[layer_norm]", f"{_GRAD}[layer_norm_plain]"],
            "With d = g·w: dx = (d - mean(d) - x̂·mean(d·x̂)) · rstd, the means along the last axis (row_sums / C)."),
    "8.3": ([f"{_GRAD}[gelu]"],
            "y = x·s with s = σ(2u) from the forward: dy/dx = s + x·s(1-s)·2u', 2u' = 2c(1 + 3k·x²)."),
    "8.4": (["tests/test_build_the_gpt.py::test_mlp_by_hand"], "dropout(c_proj(gelu(c_fc(x)))): (B, T, C) -> (B, T, 4C) -> (B, T, C)."),
    "8.5": (["tests/test_build_the_gpt.py::test_block_by_hand"],
            "Pre-LayerNorm residuals: x = x + attn(ln_1(x), cache), then x = x + mlp(ln_2(x)); return x."),
    "8.6": (["tests/test_build_the_gpt.py::test_gpt_forward_and_loss_by_hand",
             "tests/test_model.py::test_loss_at_init_is_log_vocab[cpu-baby]",
             "tests/test_model.py::test_changing_token_t_never_changes_earlier_logits",
             "tests/test_model.py::test_attention_maps_are_causal_distributions_and_cost_nothing_otherwise"],
            "positions = xp.arange(past, past + T) (past is 0 without a cache); x = wte(ids) + wpe(positions), "
            "(B, T, C) + (T, C); drop(x); each block in self.h with its cache[i] (None without a cache); "
            "logits = lm_head(ln_f(x)); loss = F.cross_entropy(logits, targets) when targets is not None, else None."),
    "9.1": (["tests/test_optim.py::test_adamw_first_step_is_lr_times_sign_and_decays_only_matrices",
             "tests/test_optim.py::test_adamw_follows_its_formula_over_several_steps",
             "tests/test_optim.py::test_adamw_matches_pytorch"],
            "Everything is flat: self.flat holds all parameters, the decayed ones (matrices) first, so "
            "decay is: for each (part, wd) in self.decay_runs, self.flat[part] *= (1 - lr·wd). "
            "m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; "
            "self.flat -= (lr / bias1) · m / (√(v / bias2) + eps). All in place."),
    "9.2": (["tests/test_optim.py::test_clip_grad_norm",
             "tests/test_optim.py::test_clip_grad_norm_keeps_shapes_and_never_writes_into_the_old_gradients"],
            "Gather every gradient into one new flat array (xp.concatenate of each reshaped to -1); "
            "norm = √(Σ flat²) (sum_of_squares(flat): the dot product flat·flat, safe from overflow); "
            "flat *= min(1, max_norm / (norm + 1e-6)); give each parameter its slice of flat, reshaped, as "
            "its gradient's data."),
    "9.3": (["tests/test_optim.py::test_cosine_schedule"],
            "Before warmup_steps: max_lr·(step+1)/(warmup_steps+1). After decay_steps: min_lr. Between: "
            "min_lr + ½(1 + cos(π·progress))·(max_lr - min_lr)."),
    "9.4": (["tests/test_train.py::test_batches_are_next_token_shifted"],
             "data = self.splits[split]. Draw batch_size start positions with rng.integers(0, len(data) - "
             "block_size) (to_device them to data's device); the windows are data[starts[:, None] + self.offsets], "
             "(B, T+1), as int64. x = windows[:, :-1], y = windows[:, 1:]: y[t] is the token after x[t]."),
    "9.5": (["tests/test_train.py::test_accumulated_micro_batches_give_the_gradient_of_the_whole_batch"],
             "grad_accum times: x, y = batches.get_batch('train', batch_size, rng); _, loss = model(x, y); "
             "(loss * (1 / grad_accum)).backward() (gradients add up in .grad, so the sum is their mean). "
             "Return the last loss."),
    "9.6": (["tests/test_train.py::test_a_training_step_is_zero_grad_backward_clip_step"],
             "opt.zero_grad(); loss = accumulate_gradients(...); world.average_gradients(model.parameters()) (with "
             "one process it does nothing; with several, it averages their gradients: tinyllm/distributed.py); norm = "
             "optim.clip_grad_norm_(model.parameters(), grad_clip or math.inf) (0 means: measure, do not clip); "
             "opt.step(); return loss, norm."),
    "10.1": (["tests/test_train.py::test_top_k_top_p_and_temperature_on_hand_made_logits"],
             "top-k: set z below the k-th largest to -inf. Softmax. top-p: sort by probability; a token "
             "stays while the mass ranked above it is < p; renormalise."),
    "10.2": (["tests/test_train.py::test_generate_feeds_the_last_block_size_tokens_and_appends_each_draw"],
             "max_new_tokens times: feed = the last block_size ids (with use_cache: all of them when the cache is "
             "new or full, so start model.new_cache() and cached = 0 then; else only the newest id); "
             "logits, _ = model(np.array([feed]), cache=cache if use_cache else None); cached += len(feed); "
             "probs = next_token_probs(to_numpy(logits.data[0, -1]), temperature, top_k, top_p); "
             "token = int(rng.choice(len(probs), p=probs)); append it; on_token(token) when given; stop once "
             "the token is stop_token."),
    "10.3": (["tests/test_train.py::test_cached_logits_match_full_forward",
              "tests/test_train.py::test_kv_cache_generation_equals_full_recompute[greedy]",
              "tests/test_train.py::test_kv_cache_generation_equals_full_recompute[seeded-sampling]"],
             "On first use, make cache['k'] and cache['v'] empty (B, H, cache['capacity'], D) arrays (array_module "
             "of k.data). n = cache['length']: write k.data and v.data into positions n:n+T of the time axis (2), "
             "add T to the length, and return Tensors of positions :n+T (views, not copies)."),
    "11.1": (["tests/test_compress.py::test_the_coder_by_hand",
              "tests/test_compress.py::test_the_coder_round_trips_and_costs_the_entropy",
              "tests/test_compress.py::test_the_coder_survives_long_runs_of_the_middle"],
             "width = high - low + 1 integers. The piece [start, start + freq) of total is the part of the "
             "interval from low + width * start // total up to, not including, low + width * (start + freq) "
             "// total: new high is that end minus 1. Compute the new high before changing low (both use the old low)."),
    "13.1": (["tests/test_pretrained.py::test_the_weights_transformers_saved_give_the_logits_transformers_computed",
              "tests/test_pretrained.py::test_the_older_hub_layout_loads_the_same_model"],
             "Drop the 'transformer.' prefix from every name. Pop lm_head.weight: it must equal wte.weight "
             "(tied) or it is an error. Leave out the masks (MASK_BUFFER.fullmatch), and transpose (.T) "
             "the names ending in CONV1D_WEIGHTS: GPT-2 stored those (in, out)."),
    "15.1": (["tests/test_functional.py::test_dropout_train_and_eval",
              "tests/test_functional.py::test_dropout_is_repeatable_with_manual_seed", f"{_GRAD}[dropout]",
              f"{_GRAD}[attention_dropout]", "tests/test_functional.py::test_fused_attention_equals_its_five_ops[0.3]"],
             "u holds one uniform draw in [0, 1) per element. Keep an element where u >= p (so with probability "
             "1 - p), and scale what is kept by 1/(1 - p) so the expected value is unchanged: mask = (u >= p) as "
             "like.dtype, times scale. Return a function a -> a·mask: the forward and the backward both call it, "
             "so they drop the same elements."),
    "15.2": (["tests/test_diagnostics.py::test_update_to_data_ratio_of_an_sgd_step_is_lr_times_the_gradients_spread_over_the_weights"],
             "For each name in before: the step's change is the parameter's data now (to_numpy, as float64) minus "
             "before[name]; its ratio is the change's std over before[name]'s std, as a Python float."),
    "16.1": (["tests/test_masked.py::test_mask_tokens_chooses_masks_swaps_and_keeps_in_berts_proportions",
              "tests/test_masked.py::test_the_masked_lm_loss_counts_the_chosen_positions_only"],
             "Draw in this order, each shaped like ids: chosen = rng.random(...) < rate, then action = "
             "rng.random(...). inputs is a copy of ids: where chosen and action < 0.8, mask_id; where chosen and "
             "0.8 <= action < 0.9, rng.integers(0, vocab_size, how many); the rest unchanged. targets = ids where "
             "chosen, else ignore_index (np.where)."),
    "17.1": (["tests/test_stages.py::test_the_last_stage_computes_what_the_gpt_computes",
              "tests/test_stages.py::test_each_stage_has_its_parts_and_no_later_ones",
              "tests/test_stages.py::test_the_mlp_stage_stacks_attention_and_mlp_without_residuals_or_layernorm"],
             "x = wte(ids); with has_attention add wpe(xp.arange(T)). For each block in self.h: a = block.attn(of "
             "block.ln_1(x) with has_layernorm, else of x); x = x + a with has_residual, else a. With has_mlp the "
             "same for block.mlp and block.ln_2. With has_layernorm, x = self.ln_f(x). logits = self.lm_head(x)."),
    "18.1": (["tests/test_scaling.py::test_fit_power_law_recovers_an_exact_power_law",
              "tests/test_scaling.py::test_fit_power_law_is_least_squares_in_log_space"],
             "A power law is a line in logs: log y = log a - alpha·log x. Fit the line through (log x, log y) "
             "by least squares (np.polyfit(..., 1) gives slope and intercept): alpha = -slope, a = e^intercept. "
             "Return Python floats."),
    "19.1": (["tests/test_lora.py::test_lora_linear_by_hand",
              "tests/test_lora.py::test_lora_gradients_match_float64_finite_differences",
              "tests/test_lora.py::test_apply_lora_changes_nothing_at_first_and_trains_only_the_adapters"],
             "Two thin products through the rank-r bottleneck: h = F.linear(self.dropout(x), self.lora_A) "
             "(..., n_in) -> (..., r), then F.linear(h, self.lora_B) -> (..., n_out). Return self.base(x) plus "
             "that times self.scale. Autograd does the backward: every piece is an op you wrote."),
    "20.1": (["tests/test_quantize.py::test_quantize_by_hand",
              "tests/test_quantize.py::test_the_error_is_at_most_half_a_step_per_element[8-None]",
              "tests/test_quantize.py::test_the_error_is_at_most_half_a_step_per_element[4-64]"],
             "qmax = 2**(bits-1) - 1. View w as (n_out, n_in // group_size, group_size); scales = max |w| over "
             "the last axis / qmax; divide each group by its scale (where a scale is 0, by 1 instead), round "
             "with xp.rint and cast to int8. Return q reshaped to (n_out, n_in) and the scales as float32."),
    "21.1": (["tests/test_instruct.py::test_the_response_mask_counts_only_response_tokens"],
             "ids = prompt + response (one array). inputs = ids[:-1], targets = ids[1:] (a copy: you change it): "
             "position i predicts token i + 1. The first len(prompt) - 1 targets are prompt tokens: set them to "
             "IGNORE_INDEX. Return (inputs, targets)."),
}
