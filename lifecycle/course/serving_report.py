"""The serving benchmark's figures: each server against its own framework's floor, the targets, a report.

:func:`summarise` turns the runs of :mod:`lifecycle.course.serving_bench` into the headline figures
lessons record (``rest_of_constant``, ``grpc_batch_vs_rest_batch``…) and says which targets were met;
:func:`format_report` prints them as a table and :func:`write_results` keeps them
(``benchmarks/results/serving.json``).

Taught in notebooks/05_serving.ipynb; run by ``benchmarks/serving.py`` and ``lifecycle bench serving``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What the issue asks of each figure (a ratio: higher is better).
TARGETS = {"rest_of_constant": 0.7, "grpc_of_constant": 0.7, "grpc_batch_vs_rest_batch": 1.0,
           "rest_vs_tutorial": 20.0}


def summarise(runs: dict[str, dict[str, Any]], wire: dict[str, float] | None = None) -> dict[str, Any]:
    """The headline figures (the names lessons record) and whether each target was reached.

    Each server is put against its own framework's constant (``rest_of_constant``,
    ``grpc_of_constant``: the share of the floor's throughput it keeps), with the server CPU per
    transaction beside every ratio (``..._by_cpu``: steadier when other programs share the cores).
    """
    def get(name: str, field: str = "rps") -> float | None:
        return runs.get(name, {}).get(field)

    wire = wire or {}
    figures: dict[str, Any] = {
        "tutorial_rps": get("tutorial"), "rest_rps": get("rest"), "grpc_rps": get("grpc"),
        "rest_constant_rps": get("rest_constant"), "grpc_constant_rps": get("grpc_constant"),
        "rest_batch_rows_per_s": get("rest_batch", "rows_per_second"),
        "grpc_batch_rows_per_s": get("grpc_batch", "rows_per_second"),
        "open_loop_rps": get("rest_open_loop", "offered_rps"),
        "rest_p50_ms": get("rest_open_loop", "p50_ms"), "grpc_p50_ms": get("grpc_open_loop", "p50_ms"),
        "rest_p99_ms": get("rest_open_loop", "p99_ms"), "grpc_p99_ms": get("grpc_open_loop", "p99_ms"),
    }
    if {"json_request", "protobuf_request"} <= set(wire):
        figures["json_bytes_per_row"] = round(wire["json_request"] + wire.get("json_response", 0.0), 1)
        figures["protobuf_bytes_per_row"] = round(wire["protobuf_request"] + wire.get("protobuf_response", 0.0), 1)
    ratios = {"rest_of_constant": ("rest", "rest_constant"), "grpc_of_constant": ("grpc", "grpc_constant"),
              "grpc_vs_rest": ("grpc", "rest"), "rest_vs_tutorial": ("rest", "tutorial"),
              "grpc_batch_vs_rest_batch": ("grpc_batch", "rest_batch")}
    for name, (top, bottom) in ratios.items():
        if top in runs and bottom in runs:
            figures[name] = round(runs[top]["rows_per_second"] / runs[bottom]["rows_per_second"], 3)
            cpu_top, cpu_bottom = runs[top].get("server_cpu_us_per_row"), runs[bottom].get("server_cpu_us_per_row")
            if cpu_top and cpu_bottom:
                figures[f"{name}_by_cpu"] = round(cpu_bottom / cpu_top, 3)
    targets = {name: {"target": goal, "measured": figures.get(name), "met": figures.get(name) is not None
                      and figures[name] >= goal} for name, goal in TARGETS.items()}
    return {"figures": figures, "targets": targets}


def write_results(result: dict[str, Any], path: str | Path) -> Path:
    """Write a benchmark result as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of a benchmark result, every round's figure in the last column."""
    lines = [f"{'configuration':<20}{'req/s':>9}{'rows/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
             f"{'CPU µs/row':>11}  rounds (req/s; p50 ms for open loop)"]
    for name, run in result["runs"].items():
        cpu = run.get("server_cpu_us_per_row")
        lines.append(f"{name:<20}{run['rps']:>9,.0f}{run['rows_per_second']:>10,.0f}{run['p50_ms']:>8.2f}"
                     f"{run['p99_ms']:>8.2f}{run['errors']:>7}{'' if cpu is None else f'{cpu:,.0f}':>11}  "
                     f"{', '.join(f'{value:,.1f}' for value in run['rounds'])}")
    for name, value in result.get("wire_bytes", {}).items():
        lines.append(f"bytes per transaction, {name.replace('_', ' ')}: {value:,.1f}")
    for name, target in result["targets"].items():
        measured = target["measured"]
        shown = "not run" if measured is None else f"{measured:,.2f}"
        lines.append(f"target {name} >= {target['target']:,}: {shown} -> {'met' if target['met'] else 'NOT met'}")
    return "\n".join(lines)
