"""Where a training step's time goes: wall-clock sections of genevae's step, medians.

The torch profiler's self times inside custom autograd functions mislead on CPU; this
times the phases of the trainer's step (the same calls, in the same order) with
``time.perf_counter`` between them, over many steps of one process.

    .venv/bin/python benchmarks/profile_step.py --likelihood zinb --genes 2000
    .venv/bin/python benchmarks/profile_step.py --likelihood nb --genes 715 --steps 400
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from genevae.config import ModelConfig
from genevae.data.simulate import simulate_sc
from genevae.model.count_loss import count_reconstruction_loss
from genevae.model.kl import kl_normal_standard
from genevae.model.networks import set_matmul_dtype
from genevae.model.vae import VAE
from genevae.train.flat import FlatParameters
from genevae.train.memory import keep_freed_memory
from genevae.train.trainer import clip_gradients

SECTIONS = ("batch gather", "encoder", "decoder hidden", "output heads", "count loss forward",
            "KL and objective", "backward", "clipping", "AdamW")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--likelihood", choices=("nb", "zinb"), default="nb")
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--grad-clip", type=float, default=10.0, help="0: no clipping")
    args = parser.parse_args(argv)

    counts = simulate_sc(n_cells=args.cells, n_genes=args.genes, seed=0).X
    x_all = torch.from_numpy(np.asarray(counts.todense() if hasattr(counts, "todense")
                                        else counts, dtype=np.float32))
    library_all = x_all.sum(1)
    torch.manual_seed(0)
    # the "scvi" preset's architecture
    model = VAE(args.genes, [], ModelConfig(likelihood=args.likelihood, n_latent=10,
                                            n_hidden=128, n_layers=1, dropout=0.1,
                                            decoder_dropout=0.0, batch_norm=True))
    set_matmul_dtype(model, torch.bfloat16 if args.precision == "bf16" else torch.float32)
    flat = FlatParameters(model)
    optimizer = torch.optim.AdamW([flat.parameter], lr=1e-3, fused=True)
    keep_freed_memory()
    model.train()
    no_conditions = torch.zeros(args.batch_size, 0, dtype=torch.long)
    seconds: dict[str, list[float]] = defaultdict(list)

    def step() -> None:
        stamps = [time.perf_counter()]
        rows = torch.randint(0, args.cells, (args.batch_size,))
        x, library = x_all.index_select(0, rows), library_all.index_select(0, rows)
        stamps.append(time.perf_counter())
        c = model._condition_features(no_conditions)
        qz_mean, qz_logvar = model._encode(x, library, c)
        stamps.append(time.perf_counter())
        h = model._decode_hidden(model._sample_z(qz_mean, qz_logvar), c)
        stamps.append(time.perf_counter())
        logits = model.px_scale_head(h)
        zi_logits = model.px_zi_logits_head(h) if args.likelihood == "zinb" else None
        stamps.append(time.perf_counter())
        recon = count_reconstruction_loss(logits, library, model.px_log_theta, x, zi_logits)
        stamps.append(time.perf_counter())
        objective = recon.mean() + kl_normal_standard(qz_mean, qz_logvar).mean(0).sum()
        stamps.append(time.perf_counter())
        flat.backward(objective)
        stamps.append(time.perf_counter())
        if args.grad_clip:  # as the trainer: 0 clips nothing
            clip_gradients([flat.parameter], args.grad_clip)
        stamps.append(time.perf_counter())
        optimizer.step()
        stamps.append(time.perf_counter())
        for name, start, end in zip(SECTIONS, stamps[:-1], stamps[1:], strict=True):
            seconds[name].append(end - start)

    for _ in range(50):  # warm-up: allocator, thread pool, caches
        step()
    seconds.clear()
    for _ in range(args.steps):
        step()
    total = 0.0
    print(f"{args.likelihood}, {args.genes} genes, batch {args.batch_size}, {args.precision}, "
          f"{torch.get_num_threads()} threads; median of {args.steps} steps")
    for name in SECTIONS:
        median = float(np.median(seconds[name])) * 1e3
        total += median
        print(f"  {name:20s} {median:6.2f} ms")
    print(f"  {'total':20s} {total:6.2f} ms  ({args.batch_size / total * 1e3:,.0f} cells/s)")


if __name__ == "__main__":
    main()
