"""Pictures of canary rollouts and of the policy's error rates.

* :func:`plot_timeline`: per look of real rollouts, the canary's step and the verdict, the
  flag-rate SPRT's evidence against its two boundaries, and the labelled flags precision waits for.
* :func:`plot_policy`: per failure kind, the share of simulated rollouts that caught it against
  the answers users got from the bad model (with and without a shadow step, say).

Taught in notebooks/06_canary_release.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

_COLOURS = {"advance": "#2e8b57", "hold": "#e67e22", "rollback": "#c0392b"}


def _gate(rollout: Any, name: str) -> Any:
    return next((gate for gate in rollout.gates if getattr(gate, "name", "") == name), None)


def plot_timeline(rollouts: Mapping[str, Any]) -> Any:
    """One column per :class:`~lifecycle.canary.rollout.CanaryRollout` (after ``run``), one point per look.

    Rows: the step the look was in (shadow drawn below 5%) coloured by the look's verdict; the
    flag-rate gate's two log-likelihood ratios with the rollback and advance boundaries; the
    labelled flagged users of each arm with the precision gate's minimum.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(rollouts), figsize=(5.2 * len(rollouts), 8.0), squeeze=False)
    for column, (title, rollout) in enumerate(rollouts.items()):
        looks = [(step, look) for step in rollout.steps_ for look in step.looks]
        x = np.arange(1, len(looks) + 1)
        level = [-10 if step.shadow else step.weight for step, _ in looks]
        step_axis, flag_axis, label_axis = axes[:, column]
        step_axis.plot(x, level, color="#95a5a6", zorder=1)
        step_axis.scatter(x, level, c=[_COLOURS[look.verdict] for _, look in looks], zorder=2)
        end = 100 if rollout.promoted_ else 0
        step_axis.plot([x[-1], x[-1] + 1], [level[-1], end], ls="--", color=_COLOURS["advance" if end else "rollback"])
        step_axis.annotate("promoted" if end else "rolled back", (x[-1] + 1, end), ha="right", va="bottom",
                           xytext=(0, 4), textcoords="offset points")
        step_axis.set(title=title, ylabel="canary weight (%)", ylim=(-18, 112), yticks=[-10, 5, 25, 50, 100],
                      yticklabels=["shadow", "5", "25", "50", "100"], xlim=(0.5, x[-1] + 1.5))
        for verdict, colour in _COLOURS.items():
            step_axis.scatter([], [], c=colour, label=verdict)
        step_axis.legend(loc="center right", fontsize=8)
        flags, precision = _gate(rollout, "flag_rate"), _gate(rollout, "precision")
        numbers = [{g.gate: g.numbers for g in look.gates} for _, look in looks]
        if flags is not None:
            for key, label in (("log_lr_high", f"flags {flags.high:g}× as often"),
                               ("log_lr_low", f"flags {flags.low:g}× as often")):
                flag_axis.plot(x, [n["flag_rate"][key] for n in numbers], marker="o", label=label)
            flag_axis.axhline(np.log(2 / flags.alpha), color=_COLOURS["rollback"], ls=":", label="rollback boundary")
            flag_axis.axhline(np.log(flags.beta), color=_COLOURS["advance"], ls=":", label="advance boundary")
            flag_axis.set_yscale("symlog", linthresh=10)  # loud failures reach hundreds: compress beyond ±10
            flag_axis.set(ylabel="log likelihood ratio")
            flag_axis.legend(loc="lower left", fontsize=8)
        if precision is not None:
            for arm, colour in (("canary", "#e67e22"), ("stable", "#2c3e50")):
                label_axis.plot(x, [n["precision"][f"{arm}_flags"] for n in numbers], marker="o", color=colour,
                                label=f"{arm}: labelled flagged users")
            label_axis.axhline(precision.min_flags, color="grey", ls=":", label="precision judges from here")
            label_axis.legend(loc="upper left", fontsize=8)
        label_axis.set(xlabel="look", ylabel="labelled flagged users", ylim=(0, None))
        for axis in (flag_axis, label_axis):
            axis.set_xlim(0.5, x[-1] + 1.5)
        for axis in (step_axis, flag_axis, label_axis):
            axis.set_xticks(x)
    fig.tight_layout()
    return fig


def plot_policy(tables: Mapping[str, pd.DataFrame]) -> Any:
    """Detection against exposure: one point per failure kind (colour) and policy (shape).

    Args:
        tables: a label (e.g. "shadow first") → :func:`~lifecycle.canary.simulate.simulate_kinds` table.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axis = plt.subplots(figsize=(11, 4.8))
    markers, colours = ["o", "s", "^", "D"], plt.get_cmap("tab10").colors
    kinds = [kind for kind in next(iter(tables.values())).index if kind != "good"]
    for number, table in enumerate(tables.values()):
        for position, kind in enumerate(kinds):
            # Points that coincide (every kind caught with no exposure) are spread a little sideways.
            x = (float(table.loc[kind, "median_exposure"]) + 1) * 1.12 ** (position - (len(kinds) - 1) / 2)
            axis.scatter(x, 100 * float(table.loc[kind, "rolled_back"]), s=70, marker=markers[number % len(markers)],
                         color=colours[position % len(colours)], edgecolor="black", linewidth=0.5)
    failures = next(iter(tables.values()))["failure"]
    handles = [Line2D([], [], ls="", marker="o", color=colours[i % len(colours)], label=failures[kind])
               for i, kind in enumerate(kinds)]
    handles += [Line2D([], [], ls="", marker=markers[n % len(markers)], color="grey",
                       label=f"{label} (good model rolled back: {table.loc['good', 'rolled_back']:.1%})")
                for n, (label, table) in enumerate(tables.items())]
    axis.set(xscale="log", xlabel="median answers users got from the bad model, + 1 (log scale)",
             ylabel="rollouts that rolled it back (%)", ylim=(-5, 108),
             title="What each policy catches, and what it costs in exposure")
    axis.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return fig
