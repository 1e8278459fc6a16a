"""Lesson 07's playground: drift by hand, and the day the policy would retrain.

Choose what changes from the drift's day on (nothing; the customers: dearer amounts and later hours; the
fraud: a share of it with new tactics), whether it arrives all at once or gradually, and how late the
labels come: the weekly checks of lesson 07 re-run and show the drift score, the precision estimated
without labels (CBPE), the precision realised on the labels that had arrived, the truth (hindsight) and
the day the policy first says *retrain*.

The work is split as lesson 07 splits it (:mod:`lifecycle.monitoring.period`). Scoring a period (its
transactions, point-in-time features, the model's scores and the weekly drift tests:
:func:`~lifecycle.monitoring.score_periods`) is the expensive part; it depends on the drift only, so
:class:`DriftWorlds` does it once per drift setting and keeps it (the lesson's own worlds are in it from
the start). The label delay and the policy (:func:`~lifecycle.monitoring.monitor_period`) are the cheap
part, re-run on every change.

Taught in notebooks/07_monitoring.ipynb ("Try it").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lifecycle.course.playgrounds._base import LivePlot, Playground
from lifecycle.course.playgrounds.drift_periods import SCENARIOS, DriftSetting, DriftWorlds, drift_worlds

LABELS = {"retrain_day": "the policy first says retrain on", "days_to_retrain": "… days after the drift began",
          "retrain_because": "… because", "days_to_alert": "days to its first alert or retrain",
          "input_drift_weeks": "weeks after the drift whose input drift test fired",
          "input_drift": "largest input drift distance, weeks after the drift",
          "prediction_drift": "score drift distance, weeks after the drift",
          "estimated_precision": "estimated precision (CBPE), weeks after the drift",
          "realised_precision": "realised precision (labels so far), weeks after the drift",
          "true_precision": "true precision (hindsight), weeks after the drift",
          "reference_precision": "the reference's precision",
          "label_coverage": "share of transactions labelled by that check"}
NEVER = "never"


def evaluate_drift(worlds: DriftWorlds, scenario: str = "concept_drift", inflation_pct: int = 45,
                   hour_shift: int = 5, new_tactics_pct: int = 60, ramp_days: int = 0, review_days: float = 3.0,
                   reviewed_pct: int = 50, chargeback_days: float = 30.0) -> dict[str, Any]:
    """What the playground shows for one setting: lesson 07's weekly checks over the drift's period.

    Args:
        worlds: the scored periods (:func:`drift_worlds`).
        scenario, inflation_pct, hour_shift, new_tactics_pct, ramp_days: the drift (:class:`DriftSetting`).
        review_days: median days until an analyst reviews a blocked transaction.
        reviewed_pct: share of blocked transactions reviewed, in %.
        chargeback_days: median days until an approved fraud's chargeback.

    Returns:
        The retrain day (a date, or ``"never"``), days from the drift's start to it and to the first alert,
        why it retrained, the largest input and score drift distances, the mean estimated, realised and true
        precision over the weeks after the drift began, the reference's precision, the label coverage at
        the retrain check (the last check if none), the weekly ``table`` and a ``sentence``.
    """
    from lifecycle.data import LabelDelay
    from lifecycle.monitoring import Policy, days_to_detect, first_week, monitor_period

    drift = DriftSetting(scenario, inflation_pct, hour_shift, new_tactics_pct, ramp_days)
    period = worlds.period(drift)
    delay = LabelDelay(chargeback_median_days=float(chargeback_days), review_probability=reviewed_pct / 100,
                       review_median_days=float(review_days))
    table, decisions, _ = monitor_period(period, worlds.reference, delay, Policy(looks=worlds.weeks), seed=worlds.seed)
    after = table["check_day"] > worlds.drift_start
    distances = period.drift["distance"].unstack("feature").reindex(table["week"] - 1)
    week = first_week(table)
    alert = next((int(row.week) for row in table.itertuples() if row.action != "none"), None)
    check = table.loc[table["week"] == (week or worlds.weeks)].iloc[0]
    values = {
        "retrain_day": f"{check['check_day']:%a %d %b}" if week else NEVER,
        "days_to_retrain": days_to_detect(table, worlds.drift_start) if week else NEVER,
        "retrain_because": _because(decisions[week - 1].signals) if week else "-",
        "days_to_alert": (int((table.loc[table["week"] == alert, "check_day"].iloc[0] - worlds.drift_start).days)
                          if alert else NEVER),
        "input_drift_weeks": int(table.loc[after, "input_drift"].sum()),
        "input_drift": float(distances.drop(columns="score").to_numpy()[after.to_numpy()].max()),
        "prediction_drift": float(distances["score"].to_numpy()[after.to_numpy()].max()),
        "estimated_precision": float(table.loc[after, "estimated_precision"].mean()),
        "realised_precision": float(np.nanmean(table.loc[after, "realised_precision"].to_numpy(dtype=float)))
        if table.loc[after, "realised_precision"].notna().any() else float("nan"),
        "true_precision": float(table.loc[after, "precision"].mean()),
        "reference_precision": float(worlds.reference.cbpe.reference_precision_),
        "label_coverage": float(check["label_coverage"]),
        "weeks_after": int(after.sum()), "table": table, "distances": distances, "drift_start": worlds.drift_start,
    }
    values["sentence"] = _sentence(values, drift, delay)
    return values


def _because(signals: dict[str, bool]) -> str:
    if signals.get("labels"):
        return "the labelled flags' precision fell"
    return "CBPE's estimate fell and the inputs or scores drifted"


def _describe(drift: DriftSetting) -> str:
    how = "all at once" if drift.ramp_days == 0 else f"gradually over {drift.ramp_days} days"
    if drift.scenario == "baseline":
        return "Nothing changed"
    if drift.scenario == "data_drift":
        return (f"Prices rose {drift.inflation_pct}% and a third of the customers shop {drift.hour_shift} hours "
                f"later, {how}")
    return f"{drift.new_tactics_pct}% of the fraud switched to new tactics, {how}"


def _sentence(values: dict[str, Any], drift: DriftSetting, delay: Any) -> str:
    from lifecycle.monitoring import Policy

    fired, weeks = values["input_drift_weeks"], values["weeks_after"]
    moved = (f"the input drift test fired in {fired} of the {weeks} weeks after the drift began" if fired else
             f"no input drift test fired in the {weeks} weeks after the drift began")
    first = (f"{_describe(drift)}: {moved} (largest drift distance {values['input_drift']:.3f}), and CBPE "
             f"estimated precision {values['estimated_precision']:.2f} on average while the truth was "
             f"{values['true_precision']:.2f} (reference {values['reference_precision']:.2f}).")
    if values["retrain_day"] == NEVER:
        decision = " The policy never says retrain in these weeks"
    else:
        decision = (f" The policy says retrain on {values['retrain_day']}, {values['days_to_retrain']} days after the "
                    f"drift began, because {values['retrain_because']}")
        if drift.scenario == "baseline":
            decision += f" (a false alarm: the policy allows one in at most {Policy().alpha:.0%} of quiet periods)"
    labels = (f"; {delay.review_probability:.0%} of blocked transactions are reviewed after a median "
              f"{delay.review_median_days:g} days (the flags' only labels; a chargeback labels an approved "
              f"transaction, so its delay moves the coverage, {values['label_coverage']:.0%} by then, not the "
              "decision).")
    return first + decision + labels


class WeeklyChecksPlot(LivePlot):
    """The weekly checks: each week's largest drift distance (bars), the estimated, realised and true
    precision (lines), the reference's, and the first retrain. Built once for the period's weeks; an update
    sets the bars' heights and the lines' values (see :class:`LivePlot`)."""

    figsize = (8.5, 3.2)

    def build(self, figure: Any, values: dict[str, Any], settings: dict[str, Any]) -> None:
        table = values["table"]
        self.week = week = table["week"].to_numpy()
        after = week[(table["check_day"] > values["drift_start"]).to_numpy()]  # the period's, whatever the drift
        self.axis = axis = figure.add_subplot()
        # Drift distances and precisions share the axis: both run from 0 to 1 (one axis draws faster than two).
        self.bars = axis.bar(week, [0.0] * len(week), width=0.6, color="green", alpha=0.25,
                             label="largest drift distance")
        axis.axvspan(after.min() - 0.5, week.max() + 0.5, color="orange", alpha=0.08)
        (self.estimated,) = axis.plot(week, table["estimated_precision"], "o-", label="estimated precision (CBPE)")
        (self.realised,) = axis.plot(week, table["realised_precision"], "s-", label="realised (labels so far)")
        (self.truth,) = axis.plot(week, table["precision"], "--", color="grey", label="truth (hindsight)")
        self.reference = axis.axhline(values["reference_precision"], color="black", lw=0.8, ls=":", label="reference")
        self.retrain = axis.axvline(week[0], color="red", label="first retrain")
        axis.set(ylim=(0, 1.05), xlim=(0.4, week.max() + 0.6), xticks=week,
                 xlabel="weekly check (shaded: after the drift)", ylabel="precision, distance",
                 title="The weekly checks")
        self.retrained: bool | None = None
        self._legend(True)  # the layout makes room for the longest legend
        figure.tight_layout()

    def _legend(self, retrained: bool) -> None:
        if retrained != self.retrained:
            lines = [self.estimated, self.realised, self.truth, self.reference] + [self.retrain] * retrained
            self.axis.legend(handles=[*lines, self.bars], loc="center left",  # lines first, as matplotlib orders
                             bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
            self.retrained = retrained

    def show_text(self, visible: bool) -> bool:
        # Ticks, labels and title are fixed (the axis limits are); the legend has two versions (text_key).
        axis = self.axis
        axis.tick_params(labelbottom=visible, labelleft=visible)
        for text in (axis.title, axis.xaxis.label, axis.yaxis.label, axis.get_legend()):
            text.set_visible(visible)
        return True

    def text_key(self) -> Any:
        return self.retrained

    def refresh(self, values: dict[str, Any], settings: dict[str, Any]) -> None:
        table = values["table"]
        for bar, height in zip(self.bars, values["distances"].drop(columns="score").max(axis=1).to_numpy(),
                               strict=True):
            bar.set_height(height)
        for line, column in ((self.estimated, "estimated_precision"), (self.realised, "realised_precision"),
                             (self.truth, "precision")):
            line.set_ydata(table[column].to_numpy(dtype=float))
        self.reference.set_ydata([values["reference_precision"]] * 2)
        retrain = table.loc[table["action"] == "retrain", "week"]
        if len(retrain):
            self.retrain.set_xdata([retrain.iloc[0]] * 2)
        self.retrain.set_visible(bool(len(retrain)))
        self._legend(bool(len(retrain)))


def drift_playground(model: Any, reference: Any, history: pd.DataFrame, start: str | pd.Timestamp, weeks: int,
                     drift_day: int, rows: int, seed: int = 42, scored: dict[str, Any] | None = None,
                     worlds: dict[str, tuple[str, dict[str, Any]]] | None = None, world: str = "concept_drift",
                     review_probability: float = 0.5, settings: Any = None) -> Playground:
    """The "Try it" of lesson 07 (display it): see :func:`evaluate_drift`.

    Args:
        model, reference, history, start, weeks, drift_day, rows, seed: lesson 07's monitored model, its
            reference, January, and the production period's shape (see :class:`DriftWorlds`).
        scored, worlds: the lesson's scored periods and their ``(scenario, strength)`` by name, kept so
            that their settings cost nothing (:func:`drift_worlds`).
        world: the lesson's world the playground starts in (a key of ``worlds``; without ``worlds``, a
            scenario at the generator's default strength).
        review_probability: the lesson's share of blocked transactions reviewed.
        settings: where *Log this setting* logs (an MLflow run tagged ``playground=07``).
    """
    import ipywidgets as widgets

    state = drift_worlds(model, reference, history, start, weeks, drift_day, rows, seed, scored, worlds)
    first = DriftSetting.of_world(*(worlds or {}).get(world, (world, {})))
    ramps = sorted({0, 21, 42, 63} | {first.ramp_days} | {s.ramp_days for s in state.periods})
    wide = {"style": {"description_width": "initial"}, "layout": widgets.Layout(width="460px")}
    controls = {
        "scenario": widgets.Dropdown(options=[(label, name) for name, label in SCENARIOS.items()],
                                     value=first.scenario, description="from the drift's day, what changes", **wide),
        "inflation_pct": widgets.IntSlider(value=first.inflation_pct, min=0, max=100, step=5,
                                           description="amounts dearer by (%)", **wide),
        "hour_shift": widgets.IntSlider(value=first.hour_shift, min=0, max=12, step=1,
                                        description="a third of customers shop later by (hours)", **wide),
        "new_tactics_pct": widgets.IntSlider(value=first.new_tactics_pct, min=0, max=100, step=10,
                                             description="fraud with new tactics (%)", **wide),
        "ramp_days": widgets.Dropdown(options=[("all at once (sudden)" if d == 0 else f"gradually, over {d} days", d)
                                               for d in ramps], value=first.ramp_days,
                                      description="how it arrives", **wide),
        "review_days": widgets.FloatSlider(value=3.0, min=0.5, max=21.0, step=0.5,
                                           description="analyst review after (median days)", **wide),
        "reviewed_pct": widgets.IntSlider(value=int(round(100 * review_probability)), min=5, max=100, step=5,
                                          description="blocked transactions reviewed (%)", **wide),
        "chargeback_days": widgets.IntSlider(value=30, min=5, max=90, step=5,
                                             description="chargeback after (median days)", **wide),
    }

    def adjust(name: str, value: Any) -> None:  # a strength the chosen drift ignores is greyed out
        if name == "scenario":
            _enable(controls, value)

    def pending(**setting: Any) -> str | None:
        if state.has(_drift_of(setting)):
            return None
        return ("computing … this drift is new: its weeks are generated and scored once (about a second or two); "
                "coming back to it later is instant.")

    _enable(controls, first.scenario)
    return Playground("Try it: drift by hand", controls, LABELS, lambda **s: evaluate_drift(state, **s),
                      WeeklyChecksPlot(), css="lifecycle-playground-monitoring", adjust=adjust, pending=pending,
                      lesson="07", tracking=settings)


def _drift_of(setting: dict[str, Any]) -> DriftSetting:
    return DriftSetting(setting["scenario"], setting["inflation_pct"], setting["hour_shift"],
                        setting["new_tactics_pct"], setting["ramp_days"])


def _enable(controls: dict[str, Any], scenario: str) -> None:
    for name in ("inflation_pct", "hour_shift"):
        controls[name].disabled = scenario != "data_drift"
    controls["new_tactics_pct"].disabled = scenario != "concept_drift"
    controls["ramp_days"].disabled = scenario == "baseline"
