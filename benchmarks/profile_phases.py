"""Where the wall time of a whole ``genevae train ... --no-report`` process goes (issue 19).

The NB command of ``bench_whole_process.py`` (``--likelihood zinb``: the ZINB one; latent
10, hidden 128, 1 layer, batch 128, β 1 constant, 20 epochs, validation every epoch,
``--no-report``) runs in a subprocess
that drives ``genevae.cli.main`` exactly as the ``genevae`` console script does, with
light timers wrapped around the functions of each phase (nothing in ``src/`` changes):

- interpreter start: spawn to the first line of the worker (Python, ``site``);
- imports: ``import genevae.cli`` and ``import genevae.commands.train`` (what the train
  command pulls in at start; later lazy imports count in the phase that makes them);
- CLI: argument parsing, the config, ``check_batch_size``'s split, the run folder and
  ``config.toml``, printing (``cli.main`` and ``train_run`` minus the phases below);
- read (``genevae.data.io.read``), prepare (``resolve_likelihood`` and
  ``genevae.data.preprocess.prepare``);
- model and batch setup: ``fit_prepared`` minus ``Trainer.fit`` (split, model, batches,
  ``Trainer.__init__``);
- training steps (``Trainer._train_epoch``), evaluation passes
  (``genevae.train.evaluate.evaluate``, train subsample and validation each epoch),
  checkpoint writes (``last.pt`` every epoch, ``best.pt`` when the validation loss
  improves; written on a background thread, so what counts is the main thread's snapshot
  and queueing, ``Trainer._write_checkpoints``, and the wait for the last writes,
  ``BackgroundWriter.flush``), ``history.csv`` writes, the live diagnosis
  (``LiveMonitor.update``), and the rest of ``Trainer.fit`` (records, log lines);
- end of run: ``curves.png`` (``write_history_figures``, matplotlib's import included),
  the diagnosis (``write_diagnosis``), the rest of ``finish_run`` (printing);
- interpreter exit: from the worker's last line to the parent seeing the process end.

Each timer counts its function's time minus that of the timed functions it calls, so the
rows add up to the whole wall time. A second run of the real ``genevae train`` command
under ``PYTHONPROFILEIMPORTTIME=1`` lists every import of the process (at start and lazy
ones later: ``torch._dynamo`` comes in with the first ``torch.optim`` call, matplotlib's
backend with ``curves.png``) and what the heavy packages cost; a third, plain, gives the
uninstrumented wall time beside the profiled one. A package's "cost in the run" is the
cumulative time of its outermost imports, the packages they pulled in first included, so
the rows overlap (sklearn's holds the part of scipy it loaded first; torch's holds
``torch._dynamo``); "alone" is its import in a fresh interpreter.

    make bench
    .venv-bench/bin/python benchmarks/profile_phases.py                      # NB, 20 epochs
    .venv-bench/bin/python benchmarks/profile_phases.py --repeats 3          # median per phase
    .venv-bench/bin/python benchmarks/profile_phases.py --likelihood zinb
    .venv-bench/bin/python benchmarks/profile_phases.py --epochs 5 --cprofile  # + top functions
"""

from __future__ import annotations

import time

_STARTED = time.time()  # first line after the docstring: the end of interpreter start

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO / "../shared/data/tenx_mouse_brain_10k_subset.h5ad"
DEFAULT_EPOCHS = 20

#: The rows of the table, in order.
PHASES = (
    "interpreter start",
    "imports at start",
    "CLI, config, run folder, printing",
    "read",
    "prepare",
    "model and batch setup",
    "training steps",
    "evaluation passes",
    "checkpoint writes",
    "history.csv writes",
    "live diagnosis",
    "epoch bookkeeping",
    "curves.png",
    "diagnosis",
    "end of run, other",
    "profiler's own",
    "interpreter exit",
)

#: (module, attribute, phase): the timed functions; a class attribute is "Class.method".
TIMED = (
    ("genevae.cli", "main", "CLI, config, run folder, printing"),
    ("genevae.commands.train", "train_run", "CLI, config, run folder, printing"),
    ("genevae.services.inputs", "read", "read"),
    ("genevae.services.inputs", "resolve_likelihood", "prepare"),
    ("genevae.services.inputs", "prepare", "prepare"),
    ("genevae.commands.train", "fit_prepared", "model and batch setup"),
    ("genevae.train.trainer", "Trainer.fit", "epoch bookkeeping"),
    ("genevae.train.trainer", "Trainer._train_epoch", "training steps"),
    ("genevae.train.trainer", "evaluate", "evaluation passes"),
    # checkpoints and history.csv are written on a background thread: what the main
    # thread spends is the snapshot and the queueing, and the wait for the last writes
    ("genevae.train.trainer", "Trainer._write_checkpoints", "checkpoint writes"),
    ("genevae.train.checkpoint", "BackgroundWriter.flush", "checkpoint writes"),
    ("genevae.train.trainer", "Trainer._write_history", "history.csv writes"),
    ("genevae.diagnosis.live", "LiveMonitor.update", "live diagnosis"),
    ("genevae.commands.train", "finish_run", "end of run, other"),
    ("genevae.services.runfiles", "write_history_figures", "curves.png"),
    ("genevae.services.runfiles", "write_diagnosis", "diagnosis"),
)

#: Packages whose import is worth naming.
HEAVY = ("torch", "torch._dynamo", "numpy", "scipy", "pandas", "anndata", "h5py", "sklearn",
         "matplotlib", "umap", "numba", "pynndescent", "tqdm")


def train_argv(data: Path, epochs: int, out: Path, likelihood: str = "nb") -> list[str]:
    """``genevae train``'s arguments: the command of ``bench_whole_process.py``."""
    return ["train", "--data", str(data), "--likelihood", likelihood, "--n-latent", "10",
            "--n-hidden", "128", "--n-layers", "1", "--batch-size", "128", "--beta", "1",
            "--kl-schedule", "constant", "--epochs", str(epochs), "--val-fraction", "0.1",
            "--seed", "0", "--no-report", "--out", str(out)]


# -- the worker: one genevae train, timed by phase ---------------------------------------


class PhaseTimer:
    """Exclusive time per phase: a timed call's time minus that of the timed calls inside it."""

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []  # per open call: time of its timed children

    def wrap(self, phase: str, function):
        import functools

        @functools.wraps(function)
        def timed(*args, **kwargs):
            children = [0.0]
            self._stack.append(children)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._stack.pop()
                self.exclusive[phase] += elapsed - children[0]
                self.calls[phase] += 1
                if self._stack:
                    self._stack[-1][0] += elapsed

        return timed

    def install(self) -> None:
        import importlib

        for module_name, attribute, phase in TIMED:
            owner = importlib.import_module(module_name)
            *classes, name = attribute.split(".")
            for cls in classes:
                owner = getattr(owner, cls)
            setattr(owner, name, self.wrap(phase, getattr(owner, name)))


def worker(argv: list[str], result: Path, cprofile: Path | None) -> None:
    phases: dict[str, float] = {}
    started = time.time()
    phases["profiler's own"] = started - _STARTED
    t = time.perf_counter()
    import genevae.cli
    import genevae.commands.train  # noqa: F401  (what _cmd_train imports first)

    phases["imports at start"] = time.perf_counter() - t
    t = time.perf_counter()
    timer = PhaseTimer()
    timer.install()
    phases["profiler's own"] += time.perf_counter() - t
    if cprofile is not None:
        import cProfile

        profile = cProfile.Profile()
        status = profile.runcall(genevae.cli.main, argv)
        profile.dump_stats(cprofile)
    else:
        status = genevae.cli.main(argv)
    if status != 0:
        raise SystemExit(f"genevae train exited with {status}")
    phases.update(timer.exclusive)
    payload = {"phases": phases, "calls": dict(timer.calls), "started": _STARTED}
    payload["ended"] = time.time()
    result.write_text(json.dumps(payload))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as genevae.cli.run leaves: no interpreter finalisation


# -- the parent -----------------------------------------------------------------------------


def run_profiled(data: Path, epochs: int, folder: Path, tag: str, cprofile: bool,
                 likelihood: str = "nb") -> dict[str, float]:
    """One worker run: seconds per phase, interpreter start and exit included."""
    result = folder / f"{tag}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(result),
               "--epochs", str(epochs), "--data", str(data), "--out", str(folder / tag),
               "--likelihood", likelihood]
    if cprofile:
        command += ["--cprofile", str(folder / f"{tag}.prof")]
    with open(folder / f"{tag}.log", "wb") as sink:
        spawned = time.time()
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, _ = os.wait4(process.pid, 0)
        exited = time.time()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError((folder / f"{tag}.log").read_text(errors="replace")[-3000:])
    payload = json.loads(result.read_text())
    phases = {phase: 0.0 for phase in PHASES}
    phases.update(payload["phases"])
    phases["interpreter start"] = payload["started"] - spawned
    phases["interpreter exit"] = exited - payload["ended"]
    phases["whole process"] = exited - spawned
    return phases


def run_plain(data: Path, epochs: int, folder: Path, tag: str,
              env: dict[str, str] | None = None, likelihood: str = "nb") -> tuple[float, Path]:
    """The real ``genevae train`` command: wall seconds; stderr kept in a file."""
    genevae = str(Path(sys.executable).parent / "genevae")
    stderr = folder / f"{tag}.stderr"
    with open(folder / f"{tag}.log", "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        subprocess.run([genevae, *train_argv(data, epochs, folder / tag, likelihood)], stdout=out,
                       stderr=err, check=True, cwd=REPO, env=env)
    return time.perf_counter() - started, stderr


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def parse_importtime(text: str) -> list[tuple[int, float, float, str]]:
    """``-X importtime`` lines -> (nesting level, self seconds, cumulative seconds, module),
    in print order (a module after the modules it imported)."""
    rows = []
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            rows.append((len(match.group(3)) // 2, int(match.group(1)) / 1e6,
                         int(match.group(2)) / 1e6, match.group(4)))
    return rows


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _parents(rows: list[tuple[int, float, float, str]]) -> list[int | None]:
    """For each import, the index of the import it was made inside (None at top level):
    the nearest later line of a lower level (``-X importtime`` prints in post-order)."""
    parents: list[int | None] = [None] * len(rows)
    stack: list[int] = []
    for i in reversed(range(len(rows))):
        while stack and rows[stack[-1]][0] >= rows[i][0]:
            stack.pop()
        parents[i] = stack[-1] if stack else None
        stack.append(i)
    return parents


def _root(rows: list[tuple[int, float, float, str]], index: int) -> str:
    """The top-level import that ``rows[index]`` was made inside."""
    return next((row[3] for row in rows[index:] if row[0] == 0), rows[index][3])


def import_table(rows: list[tuple[int, float, float, str]],
                 alone: dict[str, float | None]) -> str:
    """The heavy packages: imported or not, by whom, at what cost in the run and alone."""
    lines = ["| package | imported | under the top-level import | imported by | cost in the run s "
             "| alone s |", "|---|---|---|---|---|---|"]
    parents = _parents(rows)
    for package in HEAVY:
        # the entries into the package: its imports not made inside another of its imports
        entries = []
        for i, row in enumerate(rows):
            if not _in(row[3], package):
                continue
            ancestor = parents[i]
            while ancestor is not None and not _in(rows[ancestor][3], package):
                ancestor = parents[ancestor]
            if ancestor is None:
                entries.append((i, parents[i]))
        if not entries:
            lines.append(f"| {package} | no | | | | |")
            continue
        roots = list(dict.fromkeys(_root(rows, i) for i, _ in entries))
        importers = list(dict.fromkeys("(top level)" if parent is None else rows[parent][3]
                                       for _, parent in entries))
        cost = sum(rows[i][2] for i, _ in entries)
        alone_s = alone.get(package)
        lines.append(f"| {package} | yes | {', '.join(roots)} | {', '.join(importers[:3])}"
                     f"{', ...' if len(importers) > 3 else ''} | {cost:.2f} "
                     f"| {'n/a' if alone_s is None else f'{alone_s:.2f}'} |")
    return "\n".join(lines)


def top_level_imports(rows: list[tuple[int, float, float, str]], minimum: float = 0.01) -> str:
    """Imports made outside any other import (at start, or lazily by running code)."""
    top = [(seconds, module) for level, _, seconds, module in rows if level == 0]
    total = sum(seconds for seconds, _ in top)
    shown = ", ".join(f"{module} {seconds:.2f}" for seconds, module in top if seconds >= minimum)
    return f"all imports of the process: {total:.2f} s; top-level ones (s, in order): {shown}"


def genevae_modules(rows: list[tuple[int, float, float, str]], minimum: float = 0.1) -> str:
    """genevae modules whose import (with what it pulls in first) costs ``minimum`` s or more."""
    heavy = [(c, m) for _, _, c, m in rows if _in(m, "genevae") and c >= minimum]
    return (f"genevae modules costing >= {minimum:.1f} s to import (cumulative, nested ones "
            "inside their importers): "
            + ", ".join(f"{m} {c:.2f}" for c, m in heavy))


def import_alone(package: str) -> float | None:
    """Seconds to import ``package`` in a fresh interpreter (its dependencies included)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {package}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return next((cumulative for level, _, cumulative, m in parse_importtime(done.stderr)
                 if level == 0 and m == package), None)


def format_phases(runs: list[dict[str, float]]) -> str:
    whole = statistics.median(run["whole process"] for run in runs)
    lines = ["| phase | seconds | share |", "|---|---|---|"]
    for phase in PHASES:
        seconds = statistics.median(run[phase] for run in runs)
        lines.append(f"| {phase} | {seconds:.2f} | {100 * seconds / whole:.1f}% |")
    accounted = statistics.median(sum(run[p] for p in PHASES) for run in runs)
    lines.append(f"| whole process (phases add to {accounted:.2f}) | {whole:.2f} | 100% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--repeats", type=int, default=1, help="profiled runs (median per phase)")
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--likelihood", choices=("nb", "zinb"), default="nb")
    parser.add_argument("--cprofile", nargs="?", const="", default=None,
                        help="also print the top functions by cumulative time (cProfile)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = args.data.resolve()
    if args.worker:
        worker(train_argv(data, args.epochs, Path(args.out), args.likelihood), Path(args.worker),
               Path(args.cprofile) if args.cprofile else None)
        return
    load = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory(prefix="profile_phases_") as tmp:
        folder = Path(tmp)
        runs = [run_profiled(data, args.epochs, folder, f"profiled_{i}", False, args.likelihood)
                for i in range(args.repeats)]
        plain, _ = run_plain(data, args.epochs, folder, "plain", likelihood=args.likelihood)
        env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
        _, stderr = run_plain(data, args.epochs, folder, "importtime", env, args.likelihood)
        rows = parse_importtime(stderr.read_text(errors="replace"))
        profile_text = None
        if args.cprofile is not None:
            run_profiled(data, args.epochs, folder, "cprofile", True, args.likelihood)
            import pstats
            from io import StringIO

            stream = StringIO()
            stats = pstats.Stats(str(folder / "cprofile.prof"), stream=stream)
            stats.sort_stats("cumulative").print_stats(35)
            profile_text = stream.getvalue()
    print(f"\ngenevae train phases: {data.name}, {args.likelihood.upper()}, {args.epochs} epochs, "
          "--no-report, "
          f"{args.repeats} profiled run(s), median; 1-minute load {load} at start")
    print(format_phases(runs))
    print(f"\nthe same command uninstrumented: {plain:.2f} s wall "
          f"(profiled: {statistics.median(r['whole process'] for r in runs):.2f} s)")
    print("\n" + top_level_imports(rows))
    print(genevae_modules(rows))
    print("\nheavy packages of a --no-report train, under -X importtime (cost in the run: "
          "the cumulative time of the package's imports made from outside it, the packages "
          "they pulled in first included; alone: importing it in a fresh interpreter)")
    print(import_table(rows, {package: import_alone(package) for package in HEAVY
                              if any(_in(row[3], package) for row in rows)}))
    if profile_text:
        print(f"\ncProfile of one run (its overhead inflates the step loop):\n{profile_text}")


if __name__ == "__main__":
    main()
