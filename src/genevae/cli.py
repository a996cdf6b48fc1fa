"""Command line: each subcommand parses its arguments and calls one public function.

User mistakes (:class:`~genevae.errors.GenevaeError`) print one message and exit
with status 2; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from genevae import __version__
from genevae.errors import EXIT_USER_ERROR, EXIT_VERDICT, GenevaeError

__all__ = ["main", "build_parser"]

#: The commands that train or run a model (the others never import torch).
TORCH_COMMANDS = frozenset({"train", "embed", "evaluate", "sweep", "demo"})

# CLI option -> (config section, key). Options left unset keep the value from the
# config file, then the preset, then the dataclass default.
_OPTION_TARGETS: dict[str, tuple[str, str]] = {
    "data": ("data", "path"),
    "layer": ("data", "layer"),
    "transpose": ("data", "transpose"),
    "sample_sheet": ("data", "sample_sheet"),
    "condition": ("data", "condition_keys"),
    "label": ("data", "label_key"),
    "n_top_genes": ("data", "n_top_genes"),
    "val_fraction": ("data", "val_fraction"),
    "strict": ("data", "strict"),
    "backed": ("data", "backed"),
    "chunk_size": ("data", "chunk_size"),
    "likelihood": ("model", "likelihood"),
    "n_latent": ("model", "n_latent"),
    "n_hidden": ("model", "n_hidden"),
    "n_layers": ("model", "n_layers"),
    "dropout": ("model", "dropout"),
    "decoder_dropout": ("model", "decoder_dropout"),
    "batch_norm": ("model", "batch_norm"),
    "gaussian_variance": ("model", "gaussian_variance"),
    "condition_encoding": ("model", "condition_encoding"),
    "beta": ("objective", "beta"),
    "kl_schedule": ("objective", "kl_schedule"),
    "warmup_epochs": ("objective", "warmup_epochs"),
    "n_cycles": ("objective", "n_cycles"),
    "cycle_ramp": ("objective", "cycle_ramp"),
    "free_bits": ("objective", "free_bits"),
    "kl_target": ("objective", "kl_target"),
    "loss_reduction": ("objective", "loss_reduction"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "grad_clip": ("train", "grad_clip"),
    "seed": ("train", "seed"),
    "early_stopping_patience": ("train", "early_stopping_patience"),
    "n_eval_train_cells": ("train", "n_eval_train_cells"),
    "device": ("train", "device"),
    "precision": ("train", "precision"),
}


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", help=".h5ad, .csv/.tsv, or a 10x matrix.mtx folder")
    data.add_argument("--layer", help="take this .layers entry instead of X (e.g. counts)")
    data.add_argument("--transpose", action="store_const", const=True,
                      help="flip the genes-in-rows/columns orientation detected for a CSV/TSV")
    data.add_argument("--sample-sheet", metavar="CSV", help="conditions and labels for a plain matrix")
    data.add_argument("--condition", action="append", metavar="COL",
                      help="categorical .obs column to condition on (repeatable)")
    data.add_argument("--label", metavar="COL", help=".obs column to stratify the split and probe the latent")
    data.add_argument("--n-top-genes", type=int, metavar="N", help="keep the N most variable genes")
    data.add_argument("--val-fraction", type=float, metavar="F", help="validation share (default 0.1)")
    data.add_argument("--strict", action="store_const", const=True,
                      help="turn data warnings (non-integer counts, empty cells) into errors")
    data.add_argument("--backed", action="store_const", const=True,
                      help="stream an .h5ad with a CSR matrix from disk instead of loading it")
    data.add_argument("--chunk-size", type=int, metavar="N",
                      help="with --backed: cells read at once, sets the peak memory (default 10000)")
    model = parser.add_argument_group("model")
    model.add_argument("--likelihood", choices=["auto", "gaussian", "nb", "zinb"],
                       help="default auto: nb for counts, gaussian otherwise")
    model.add_argument("--n-latent", type=int, metavar="N", help="latent dimensions (default 10)")
    model.add_argument("--n-hidden", type=int, metavar="N", help="hidden units per layer (default 128)")
    model.add_argument("--n-layers", type=int, metavar="N", help="hidden layers (default 1)")
    model.add_argument("--dropout", type=float, metavar="P", help="dropout rate (default 0.1)")
    model.add_argument("--decoder-dropout", type=float, metavar="P",
                       help="the decoder's dropout rate (default: --dropout; preset scvi: 0)")
    model.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                       help="batch normalisation in hidden layers (default off)")
    model.add_argument("--gaussian-variance", choices=["learned", "fixed"],
                       help="per-gene learned variance, or fixed (the reference's MSE)")
    model.add_argument("--condition-encoding", choices=["onehot", "embedding"])
    objective = parser.add_argument_group("objective")
    objective.add_argument("--beta", type=float, metavar="B", help="KL weight β (default 1)")
    objective.add_argument("--kl-schedule", choices=["constant", "linear", "cyclical", "sigmoid"])
    objective.add_argument("--warmup-epochs", "--warmup", type=int, metavar="N",
                           help="length of the linear/sigmoid warm-up (default 10)")
    objective.add_argument("--n-cycles", type=int, metavar="M", help="cycles of the cyclical schedule")
    objective.add_argument("--cycle-ramp", type=float, metavar="R", help="ramp share of each cycle")
    objective.add_argument("--free-bits", type=float, metavar="NATS",
                           help="minimum KL per latent dimension before it is penalised")
    objective.add_argument("--kl-target", type=float, metavar="NATS_PER_DIM",
                           help="hold the KL per latent dimension at this value with a PI "
                           "controller on β (ControlVAE); starts from --beta, replaces the schedule")
    objective.add_argument("--loss-reduction", choices=["sum", "mean"],
                           help="sum: nats per cell (default); mean: the reference's per-element means")
    train = parser.add_argument_group("optimisation")
    train.add_argument("--epochs", type=int, metavar="N", help="default: min(400, 8e6 / n_cells)")
    train.add_argument("--batch-size", type=int, metavar="N", help="default 128")
    train.add_argument("--lr", type=float, help="AdamW learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-2)")
    train.add_argument("--grad-clip", type=float, help="max gradient norm, 0 disables (default 10)")
    train.add_argument("--seed", type=int, help="seed of split, batch order and sampling (default 0)")
    train.add_argument("--early-stopping-patience", type=int, metavar="N",
                       help="stop after N epochs without a better validation loss (default off)")
    train.add_argument("--n-eval-train-cells", type=int, metavar="N",
                       help="training cells evaluated in eval mode each epoch, 0 for all (default: "
                       "as many as the validation cells, at most 5000)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"],
                       help="default auto: CUDA, else MPS, else CPU; under torchrun each "
                       "process takes the GPU of its local rank")
    train.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                       help="training-mode products of the genes x hidden layers: bf16 "
                       "(float32 weights, optimiser and evaluation) or fp32; default auto: "
                       "bf16 where the CPU (AVX512-BF16, AMX) or GPU multiplies it natively")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR", help="run folder (default runs/<data name>)")
    output.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    output.add_argument("--preset", help="named settings: reference, scvi")
    output.add_argument("--config", metavar="TOML", help="settings file ([data], [model], ...)")
    output.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    output.add_argument("--no-report", dest="report", action="store_false",
                        help="skip the evaluation, the figures and report.html at the end "
                        "(genevae report RUN draws them later)")
    output.add_argument("--auto-fix", action="store_true",
                        help="on collapse, partial collapse or divergence, apply the ranked remedy "
                        "and retrain (attempts in OUT/attempt_<k>)")
    output.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="attempts of --auto-fix at most (default 3)")


def _add_backed_options(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--backed", action="store_const", const=True, default=None,
                        help=f"{verb} an .h5ad with a CSR matrix chunk by chunk, without loading "
                        "it (default: as the run was trained, for its own training file)")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N",
                        help="with --backed: cells read at once (default: the run's, or 10000)")


def _resolve_config(args: argparse.Namespace) -> Any:
    from genevae.config import apply_preset, build_config, load_config

    sections: dict[str, dict[str, Any]] = {}
    if args.preset:
        sections = apply_preset(args.preset)
    if args.config:
        for name, values in load_config(args.config).items():
            sections.setdefault(name, {}).update(values)
    for option, (section, key) in _OPTION_TARGETS.items():
        value = getattr(args, option, None)
        if value is not None:
            sections.setdefault(section, {})[key] = value
    if not sections.get("data", {}).get("path"):
        raise GenevaeError("no data given: pass --data FILE (.h5ad, .csv/.tsv or a 10x folder).")
    sections["data"]["path"] = str(Path(sections["data"]["path"]).expanduser().resolve())
    return build_config(sections, where="options")


def _cmd_train(args: argparse.Namespace) -> int:
    from genevae.commands.train import FINISHED, resume_run, train_run

    if args.resume:
        result = resume_run(args.resume, report=args.report)
    else:
        config = _resolve_config(args)
        out = args.out or str(Path("runs") / Path(config.data.path).stem)
        result = train_run(config, out, overwrite=args.overwrite, report=args.report,
                           auto_fix=args.auto_fix, max_attempts=args.max_attempts)
    return 0 if result.training.stop_reason in FINISHED else 1


def _cmd_simulate(args: argparse.Namespace) -> int:
    from genevae.commands.simulate import simulate_to_files

    for path in simulate_to_files(args.kind, Path(args.out), args.seed, args.n_cells, args.n_genes):
        print(f"wrote {path}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from genevae.commands.embed import embed_file

    path = embed_file(args.run, args.data, args.out, layer=args.layer, overwrite=args.overwrite,
                      backed=args.backed, chunk_size=args.chunk_size)
    print(f"wrote {path} (latent means in obsm['X_genevae'])")
    return 0


def _parse_map(items: Sequence[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    column_map = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise GenevaeError(f"--map {item}: write it as QUANTITY=COLUMN, e.g. --map recon=my_col.")
        column_map[key.strip()] = column.strip()
    return column_map


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from genevae.commands.diagnose import diagnose_log
    from genevae.diagnosis.engine import should_fail
    from genevae.diagnosis.render import render_json, render_text

    diagnosis = diagnose_log(args.log, format=args.format, column_map=_parse_map(args.map),
                             n_latent=args.n_latent, n_genes=args.n_genes,
                             loss_reduction=args.loss_reduction)
    failed = bool(args.fail_on) and should_fail(diagnosis, args.fail_on)
    print(render_json(diagnosis) if args.json else render_text(diagnosis))
    return EXIT_VERDICT if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from genevae.commands.evaluate import evaluate_run

    evaluate_run(args.run, data=args.data, label=args.label, batch=args.batch, layer=args.layer,
                 backed=args.backed, chunk_size=args.chunk_size,
                 n_importance=args.iwae_samples, embedding=args.embedding)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from genevae.commands.report import report_run

    print(f"wrote {report_run(args.run)}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from genevae.commands.sweep import parse_betas, run_sweep

    betas = parse_betas(args.beta)
    args.beta = None  # the grid replaces --beta in the shared options
    config = _resolve_config(args)
    run_sweep(config, betas, args.out or "sweep", label=args.label, n_workers=args.jobs,
              overwrite=args.overwrite)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from genevae.commands.demo import run_demo

    result = run_demo(Path(args.out), epochs=args.epochs, report=args.report)
    return 0 if result.training.stop_reason == "completed" else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``genevae`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="genevae",
        description="Train variational autoencoders on gene expression and diagnose the training.",
    )
    parser.add_argument("--version", action="version", version=f"genevae {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simulate = commands.add_parser("simulate", help="write seeded simulated data with known factors")
    simulate.add_argument("kind", choices=["bulk", "sc"],
                          help="bulk: the reference design (continuous + counts); sc: NB single-cell counts")
    simulate.add_argument("--out", default="simulated", metavar="DIR", help="output folder")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--n-cells", type=int, default=None, metavar="N",
                          help="samples/cells (bulk default 5000, sc default 10000)")
    simulate.add_argument("--n-genes", type=int, default=None, metavar="N", help="genes (default 2000)")
    simulate.set_defaults(handler=_cmd_simulate)

    train = commands.add_parser("train", help="train a (conditional) VAE and diagnose it")
    _add_train_options(train)
    train.set_defaults(handler=_cmd_train)

    embed = commands.add_parser("embed", help="write latent means to obsm['X_genevae'] of a new .h5ad")
    embed.add_argument("run", metavar="RUN", help="run folder written by genevae train")
    embed.add_argument("--data", required=True, metavar="FILE")
    embed.add_argument("--layer")
    embed.add_argument("--out", required=True, metavar="FILE.h5ad")
    embed.add_argument("--overwrite", action="store_true")
    _add_backed_options(embed, "encode")
    embed.set_defaults(handler=_cmd_embed)

    diagnose = commands.add_parser(
        "diagnose", help="read a training log of any tool and explain it",
        description="Read a training log (genevae run folder or history.csv; text logs with an "
        "epoch or step counter per line: the reference format, 'ep 12 train_loss 1734.7 kl 4.4', "
        "tqdm postfixes, printed dicts; JSON lines; Keras fit() output or history JSON; "
        "scvi-tools history_; Lightning metrics.csv or a lightning_logs/ or version_N/ folder; "
        "MLflow run folders; W&B run-history and chart CSV exports; TensorBoard events) and "
        "print findings with evidence and ranked fixes.")
    diagnose.add_argument("log", metavar="LOG",
                          help="log file, table, event file, or a run, Lightning or MLflow folder")
    diagnose.add_argument("--format", default="auto",
                          choices=["auto", "text", "keras", "csv", "json", "tensorboard"])
    diagnose.add_argument("--map", action="append", metavar="QUANTITY=COLUMN",
                          help="name the column of loss, recon, kl, val_loss, val_recon, val_kl, "
                          "kl_weight or epoch when auto-mapping is ambiguous (repeatable)")
    diagnose.add_argument("--n-latent", type=int, metavar="N",
                          help="latent dimensions, to turn a summed KL into KL per dimension")
    diagnose.add_argument("--n-genes", type=int, metavar="N", help="genes modelled by the run")
    diagnose.add_argument("--loss-reduction", choices=["sum", "mean", "unknown"],
                          help="how the log's numbers were reduced (default: read or inferred)")
    diagnose.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    diagnose.add_argument("--fail-on", action="append", metavar="CODES",
                          help="exit 1 when any of these comma-separated finding codes warns or "
                          "fails, e.g. posterior_collapse,diverged")
    diagnose.set_defaults(handler=_cmd_diagnose)

    evaluate = commands.add_parser(
        "evaluate", help="measure a run's latent space and write metrics.json",
        description="Active units, KL per dimension, mutual information, IWAE bound, probes "
        "against PCA, the no-latent baseline and latent traversals, written to RUN/metrics.json; "
        "the diagnosis and figures are updated.")
    evaluate.add_argument("run", metavar="RUN", help="run folder written by genevae train")
    evaluate.add_argument("--data", metavar="FILE", help="cells to evaluate (default: the training file)")
    evaluate.add_argument("--label", metavar="COL", help=".obs column to probe (e.g. cell type)")
    evaluate.add_argument("--batch", metavar="COL", help=".obs column whose mixing is scored")
    evaluate.add_argument("--layer", help="take this .layers entry instead of X")
    evaluate.add_argument("--iwae-samples", type=int, default=100, metavar="K",
                          help="importance samples of the IWAE bound (default 100)")
    evaluate.add_argument("--embedding", choices=["umap", "pca"], default="umap",
                          help="2-D layout of the latent scatter (default umap, PCA if it fails)")
    _add_backed_options(evaluate, "evaluate")
    evaluate.set_defaults(handler=_cmd_evaluate)

    sweep = commands.add_parser(
        "sweep", help="train one run per β, compare them and recommend a β",
        description="Train the same model at each β (processes in parallel up to the core count), "
        "then write a rate-distortion plot, KL per dimension and active units against β, the probe "
        "against β (with --label) and a recommended β with the reasoning, in OUT/sweep.html.")
    _add_train_options(sweep)
    sweep.add_argument("--jobs", type=int, metavar="N", help="parallel runs (default: cores)")
    for action in sweep._actions:
        if action.dest == "beta":
            action.type = str
            action.help = "comma-separated βs, e.g. 0.1,0.25,0.5,1,2,4"
            action.required = True
    sweep.set_defaults(handler=_cmd_sweep)

    report = commands.add_parser("report", help="write RUN/report.html, one self-contained file")
    report.add_argument("run", metavar="RUN", help="run folder written by genevae train")
    report.set_defaults(handler=_cmd_report)

    demo = commands.add_parser("demo", help="simulate bulk data, train the reference model, diagnose")
    demo.add_argument("--out", default="demo-run", metavar="DIR")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--no-report", dest="report", action="store_false",
                      help="skip the evaluation and report.html at the end")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _configure_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("genevae: %(message)s"))
    root = logging.getLogger("genevae")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main(argv: Sequence[str] | None = None, own_process: bool = False) -> int:
    """Entry point of the ``genevae`` command; returns the exit status.

    ``own_process``: the caller started this process for the command (:func:`run`), so
    the command may set process-wide state: the commands that run a model flush subnormal
    floats to zero (:func:`~genevae.train.precision.flush_denormals`). Called from Python
    (tests, notebooks) the floating-point mode of the process is left as it is.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    try:
        if own_process and args.command in TORCH_COMMANDS:
            from genevae.train.precision import flush_denormals

            flush_denormals()  # before torch starts its threads, which inherit the mode
        return args.handler(args)
    except GenevaeError as error:
        if args.debug:
            traceback.print_exc()
        print(f"genevae: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("genevae: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``genevae`` command and ``python -m genevae``: :func:`main`, then exit at once.

    Every file is written (atomically, flushed to disk) before :func:`main` returns, so
    the process flushes its streams and logging and leaves with ``os._exit``: finalising
    an interpreter that holds torch (and ``torch._dynamo``, which ``torch.optim`` loads)
    takes about a second and frees nothing a user waits for. What escapes :func:`main`
    (argparse's exit for ``--help`` or a usage error, an unexpected error) still ends the
    process the usual way.
    """
    status = main(own_process=True)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to say
            pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
