"""``minires bench``: run the benchmarks, then write JSON, a markdown table and a PNG chart.

Results go to ``OUT/cpu.json`` (every figure, the machine, the versions), ``OUT/cpu.md`` (the
tables) and ``OUT/cpu-kernels.png`` (PyTorch-time / minires-time per op). When ``OUT``'s
parent holds a README.md with the markers ``<!-- results:start -->`` and
``<!-- results:end -->``, the tables replace what is between them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import backend, memory
from ..data.atomic import atomic_write
from . import algorithms, compile_time, kernels, peak_memory, torch_process, train_step
from .timing import machine_description, matmul_peak_gflops

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def _fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


def kernels_table(rows: list[dict]) -> str:
    frameworks = list(dict.fromkeys(r["framework"] for r in rows))
    minires_names = [f for f in frameworks if f != "torch"]
    head = ["op", "pass"] + [f"{f} ms" for f in frameworks]
    head += [f"{f} GFLOP/s" for f in minires_names] + [f"torch/{f}" for f in minires_names]
    head += [f"{f} % peak" for f in minires_names]
    speedup = {"numpy", "numba"} <= set(frameworks)        # what the numba kernels gain
    if speedup:
        head.append("numpy/numba")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keyed = {(r["case"], r["direction"], r["framework"]): r for r in rows}
    for case, direction in dict.fromkeys((r["case"], r["direction"]) for r in rows):
        cells = [case, direction]
        cells += [_fmt(keyed[(case, direction, f)]["seconds"] * 1e3, ".3f") for f in frameworks]
        cells += [_fmt(keyed[(case, direction, f)]["gflops"], ".1f") for f in minires_names]
        cells += [_fmt(keyed[(case, direction, f)]["torch_over_this"], ".2f") for f in minires_names]
        cells += [_fmt(keyed[(case, direction, f)]["percent_of_peak"], ".0f") for f in minires_names]
        if speedup:
            cells.append(format(keyed[(case, direction, "numpy")]["seconds"]
                                / keyed[(case, direction, "numba")]["seconds"], ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_table(rows: list[dict]) -> str:
    lines = ["| framework | train img/s | ratio to torch | inference img/s | ratio to torch "
             "| peak RSS, MiB | of which the steps, MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['framework']} | {r['train_images_per_second']:.1f} | "
                     f"{_fmt(r.get('train_ratio_to_torch'), '.2f')} | "
                     f"{r['inference_images_per_second']:.1f} | {_fmt(r.get('inference_ratio_to_torch'), '.2f')} | "
                     f"{_fmt(r.get('peak_rss_mib'), '.0f')} | {_fmt(r.get('steps_added_mib'), '.0f')} |")
    return "\n".join(lines)


def torch_loaded_table(rows: list[dict]) -> str:
    """The train benchmark in one process with PyTorch imported first, against each
    framework's own process."""
    lines = ["| framework | train img/s | of its own process | inference img/s | of its own process |",
             "|---|---|---|---|---|"]
    for r in rows:
        if "train_images_per_second_torch_loaded" in r:
            lines.append(f"| {r['framework']} | {r['train_images_per_second_torch_loaded']:.1f} | "
                         f"{r['train_torch_loaded_to_own_process']:.2f} | "
                         f"{r['inference_images_per_second_torch_loaded']:.1f} | "
                         f"{r['inference_torch_loaded_to_own_process']:.2f} |")
    return "\n".join(lines)


def algorithms_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join([row["layer"]] + [_fmt(row.get(c), ".2f") for c in columns[1:]]) + " |")
    return "\n".join(lines)


def compile_table(result: dict) -> str:
    lines = ["| numba cache | first calls, total s | compiling/loading, s |", "|---|---|---|"]
    for label in ("cold", "warm"):
        r = result[label]
        lines.append(f"| {label} | {r['total']:.2f} | {r['compile_seconds']:.2f} |")
    return "\n".join(lines)


def plot_kernels(rows: list[dict], path: Path) -> None:
    """Bars of PyTorch time / minires time per op and pass (above 1: minires is faster)."""
    from ..plots import pyplot, save_png

    plt = pyplot()
    minires_names = [f for f in dict.fromkeys(r["framework"] for r in rows) if f != "torch"]
    labels = list(dict.fromkeys(f"{r['case']} {r['direction'][:3]}" for r in rows))
    fig, axes = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.5))
    height = 0.8 / max(len(minires_names), 1)
    for k, name in enumerate(minires_names):
        values = [r["torch_over_this"] or 0.0 for r in rows if r["framework"] == name]
        axes.barh([i + k * height for i in range(len(values))], values, height=height, label=name)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_yticks([i + height * (len(minires_names) - 1) / 2 for i in range(len(labels))], labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("PyTorch time / minires time (log; > 1: minires faster)")
    axes.legend()
    save_png(fig, path)
    plt.close(fig)


def run_benchmarks(what: str = "all", out_dir: Path = Path("benchmarks/results"), repeats: int = 7,
                   with_torch: bool = True, rounds: int = train_step.ROUNDS, log=print,
                   with_torch_loaded: bool = False) -> dict:
    reuse = memory.reuse_freed_memory()        # PyTorch's process sets it too (torch_process)
    if with_torch and not torch_process.torch_available():
        log("minires bench: PyTorch is not installed (pip install torch); timing minires alone")
        with_torch = False
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "cpu.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results["machine"] = machine_description()
    results["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["settings"] = {"reuse_freed_memory": reuse, "torch_in_own_process": True}
    backends = kernels.available_backends()
    log(f"minires bench {what}: backends {', '.join(backends)}"
        + (" and PyTorch" if with_torch else "") + f", {results['machine']['cpu_count']} cores")
    if what in ("kernels", "all"):
        peak = matmul_peak_gflops()
        log(f"  float32 matmul peak (NumPy BLAS, 2048^3): {peak:.1f} GFLOP/s")
        rows = kernels.run(backends, repeats=repeats, with_torch=with_torch, peak_gflops=peak, log=log)
        results["kernels"] = {"matmul_peak_gflops": peak, "rows": rows}
        plot_kernels(rows, out_dir / "cpu-kernels.png")
    if what in ("train", "all"):
        rows = train_step.run(backends, repeats=repeats, with_torch=with_torch, rounds=rounds, log=log,
                              with_torch_loaded=with_torch_loaded)
        for row in rows:          # peak memory: each framework in a fresh process of its own
            row.update(peak_memory.measure(row["framework"]))
            log(f"  {row['framework']:7s} peak RSS of a train step {row['peak_rss_mib']:.0f} MiB "
                f"({_fmt(row['steps_added_mib'], '.0f')} MiB added by {row['steps']} steps)")
        results["train"] = {"rows": rows}
    if what in ("compile", "all") and "numba" in backends:
        results["compile"] = compile_time.run(log=log)
    if what == "algorithms":
        results["algorithms"] = {"threads": backend.get_num_threads(),
                                 "rows": algorithms.run(backends, repeats=repeats, with_torch=with_torch,
                                                        log=log)}
    _write_text(json_path, json.dumps(results, indent=2) + "\n")

    sections = [f"Measured {results['date']} on {results['machine'].get('cpu_model', '?')} "
                f"({results['machine']['cpu_count']} cores), torch {results['machine'].get('torch')} "
                f"(timed in a process of its own, see minires/bench/torch_process.py); freed memory "
                f"kept for reuse (minires.memory) in both processes: "
                f"{'yes' if results['settings']['reuse_freed_memory'] else 'no'}; load average "
                f"{_fmt(results['machine'].get('load_average_at_start'), '.2f', 'unknown')} at the start "
                f"(other work on the machine: a busy one's ratios mean little)."]
    if "train" in results:
        rounds_done = results["train"]["rows"][0].get("rounds", 1)
        sections.append(f"### The seed's model, batch 64, float32 (median of {rounds_done} rounds, "
                        f"the frameworks taking turns; peak resident memory of {peak_memory.STEPS} "
                        f"train steps, each framework in a fresh process)\n\n"
                        + train_table(results["train"]["rows"]))
        if any("train_images_per_second_torch_loaded" in r for r in results["train"]["rows"]):
            sections.append(f"### The same, in one process with PyTorch imported first (median of "
                            f"{rounds_done} rounds; minires/bench/shared_process.py)\n\n"
                            + torch_loaded_table(results["train"]["rows"]))
    if "compile" in results:
        sections.append("### JIT compile time\n\n" + compile_table(results["compile"]))
    if "algorithms" in results:
        sections.append(f"### Convolution algorithms: forward + backward per seed layer, ms, "
                        f"{results['algorithms']['threads']} thread(s)\n\n"
                        + algorithms_table(results["algorithms"]["rows"]))
    if "kernels" in results:
        sections.append(f"### Ops at the seed's shapes, batch 64, float32 "
                        f"(matmul peak {results['kernels']['matmul_peak_gflops']:.1f} GFLOP/s)\n\n"
                        + kernels_table(results["kernels"]["rows"]))
    table = "\n\n".join(sections) + "\n"
    _write_text(out_dir / "cpu.md", table)
    readme = out_dir.parent / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        if START in text and END in text:
            before, rest = text.split(START, 1)
            _, after = rest.split(END, 1)
            _write_text(readme, before + START + "\n" + table + END + after)
    log(f"results in {json_path}, {out_dir / 'cpu.md'}")
    return results
