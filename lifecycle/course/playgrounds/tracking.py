"""Lesson 03's playground: an experiment the learner runs, tracked like every other run.

Choose a model kind and its settings, press *Run*: the model is fitted on the lesson's training window
(rows capped so one run stays within a few seconds), logged to MLflow as a run of the lesson's
experiment, and the comparison of this session's runs (table and plot, the learner's runs marked)
is read back from MLflow, as lesson 03 reads its own.

Taught in notebooks/03_experiment_tracking.ipynb ("Try it").
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from lifecycle.course.playgrounds._base import WIDGET_MIMETYPE, show_figure, values_html

# kind → setting → (widget kind, default, low, high, step): what a learner may move, within caps that
# keep one fit to a few seconds on 2 cores.
KNOBS: dict[str, dict[str, tuple[str, float, float, float, float]]] = {
    "hgb": {"max_iter": ("int", 100, 10, 300, 10), "learning_rate": ("log", 0.1, 0.01, 0.5, 0.01),
            "max_leaf_nodes": ("int", 31, 4, 63, 1)},
    "random_forest": {"n_estimators": ("int", 50, 10, 150, 10), "max_depth": ("int", 12, 2, 24, 1),
                      "min_samples_leaf": ("int", 2, 1, 20, 1)},
    "logreg": {"C": ("log", 1.0, 0.001, 100.0, 0.001)},
    "gbc": {"n_estimators": ("int", 50, 10, 100, 10), "max_depth": ("int", 3, 1, 6, 1),
            "learning_rate": ("log", 0.1, 0.01, 0.5, 0.01)},
}
ROW_CAP = {"gbc": 5_000, "random_forest": 20_000, "hgb": 60_000, "logreg": 60_000}
LABELS = {"run": "run", "pr_auc": "test PR-AUC", "fit_seconds": "fit seconds", "train_rows": "rows fitted",
          "runs_in_session": "runs this session"}


def run_experiment(train: pd.DataFrame, test: pd.DataFrame, kind: str, params: dict[str, Any], seed: int = 42,
                   settings: Any = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Fit one model of ``kind`` with ``params`` (on at most ``ROW_CAP[kind]`` of the latest training rows),
    log it as an MLflow run tagged ``playground=03``, and return its run id, name and numbers.

    Raises:
        ConfigError: an unknown kind or setting.
    """
    from lifecycle.errors import ConfigError
    from lifecycle.tracking.runs import log_fraud_model
    from lifecycle.training import train_fraud_model

    if kind not in KNOBS:
        raise ConfigError(f"the playground runs {sorted(KNOBS)}, not {kind!r}")
    unknown = set(params) - set(KNOBS[kind])
    if unknown:
        raise ConfigError(f"{kind} in the playground takes {sorted(KNOBS[kind])}, not {sorted(unknown)}")
    params = {name: (int(value) if KNOBS[kind][name][0] == "int" else float(value)) for name, value in params.items()}
    window = train.tail(ROW_CAP[kind])
    trained = train_fraud_model(window, test, kind, seed, **params)
    name = f"{kind}-" + "-".join(f"{key}={value:g}" for key, value in params.items()) + f"-{trained.train_rows}-rows"
    run_id, _ = log_fraud_model(trained, window, name, settings, register=False,
                                tags={**(tags or {}), "playground": "03"})
    return {"run_id": run_id, "run": name, "pr_auc": trained.metrics["pr_auc"], "fit_seconds": trained.fit_seconds,
            "train_rows": trained.train_rows}


class TrackingPlayground:
    """Model kind, its settings and *Run*; the session's runs as a table and a plot, from MLflow.

    Attributes:
        kind: the kind Dropdown; knobs: kind → setting → slider; run: the Run Button; reset: Reset;
        table: HTML of the session's runs; status: the last run's numbers; plot: an Output widget;
        last: the numbers of the last run (None before the first).
    """

    def __init__(self, train: pd.DataFrame, test: pd.DataFrame, seed: int, session: str, settings: Any = None,
                 tags: dict[str, str] | None = None) -> None:
        import ipywidgets as widgets

        self.train, self.test, self.seed, self.session, self.settings = train, test, seed, session, settings
        self.tags = {**(tags or {}), "session": session}
        wide = {"style": {"description_width": "initial"}, "layout": widgets.Layout(width="420px")}
        self.kind = widgets.Dropdown(options=list(KNOBS), value="hgb", description="model kind", **wide)
        self.knobs = {kind: {name: _slider(name, spec, wide) for name, spec in knobs.items()}
                      for kind, knobs in KNOBS.items()}
        self.panel = widgets.VBox()
        self.run = widgets.Button(description="Run", button_style="primary", tooltip="fit, log to MLflow, compare")
        self.reset = widgets.Button(description="Reset", tooltip="back to the lesson's defaults")
        self.status, self.table, self.plot = widgets.HTML(), widgets.HTML(), widgets.Output()
        for widget, css in ((self.kind, "kind"), (self.run, "run"), (self.reset, "reset"), (self.status, "numbers"),
                            (self.table, "runs"), (self.plot, "plot")):
            widget.add_class(f"lifecycle-playground-{css}")
        self.kind.observe(lambda _change: self._show_knobs(), names="value")
        self.run.on_click(lambda _button: self.run_once())
        self.reset.on_click(lambda _button: self.restore_defaults())
        header = widgets.HTML("<b>Try it: an experiment of your own, tracked</b>")
        self.box = widgets.VBox([header, self.kind, self.panel, widgets.HBox([self.run, self.reset]), self.status,
                                 self.table, self.plot])
        self.box.add_class("lifecycle-playground")
        self.box.add_class("lifecycle-playground-tracking")
        self.last: dict[str, Any] | None = None
        self._show_knobs()
        self.refresh()

    def _show_knobs(self) -> None:
        self.panel.children = tuple(self.knobs[self.kind.value].values())

    def params(self) -> dict[str, Any]:
        """The chosen kind's settings as they stand."""
        return {name: slider.value for name, slider in self.knobs[self.kind.value].items()}

    def run_once(self) -> dict[str, Any]:
        """Fit, log and compare (what *Run* does); returns the run's numbers."""
        self.run.disabled, self.status.value = True, "<p>fitting and logging …</p>"
        try:
            self.last = run_experiment(self.train, self.test, self.kind.value, self.params(), self.seed,
                                       self.settings, self.tags)
        finally:
            self.run.disabled = False
        self.refresh()
        return self.last

    def restore_defaults(self) -> None:
        """Every setting of every kind back to its default, and the kind back to ``hgb``."""
        for kind, knobs in KNOBS.items():
            for name, spec in knobs.items():
                self.knobs[kind][name].value = spec[1]
        self.kind.value = "hgb"

    def runs(self) -> pd.DataFrame:
        """This session's runs, from MLflow, best test PR-AUC first, with who made each."""
        from lifecycle.tracking.runs import compare_runs

        runs = compare_runs(self.settings, filter_string=f"tags.session = '{self.session}'")
        runs = runs.dropna(subset=["pr_auc"]).copy()
        playground = set(_playground_run_ids(self.settings, self.session))
        runs["by"] = ["you" if run_id in playground else "the lesson" for run_id in runs["run_id"]]
        return runs

    def refresh(self) -> pd.DataFrame:
        """Redraw the table and the plot from MLflow."""
        runs = self.runs()
        shown = runs[["run", "by", "kind", "train_rows", "pr_auc", "fit_seconds"]].round(3)
        self.table.value = shown.to_html(index=False, classes="lifecycle-playground-runs-table")
        numbers = {**(self.last or {}), "runs_in_session": len(runs)}
        self.status.value = values_html(numbers, LABELS) + (
            f"<p>{html.escape(_sentence(self.last, runs))}</p>" if self.last else "")
        self._draw(runs)
        return runs

    def _draw(self, runs: pd.DataFrame) -> None:
        import matplotlib.pyplot as plt

        if runs.empty:
            show_figure(self.plot, None)  # nothing logged yet in this session: the table says so
            return
        figure, axis = plt.subplots(figsize=(6, 3.2))
        for by, marker, colour in (("the lesson", "o", "#8c8c8c"), ("you", "*", "#c0392b")):
            mine = runs[runs["by"] == by]
            axis.scatter(mine["fit_seconds"], mine["pr_auc"], marker=marker, s=90 if by == "you" else 40,
                         color=colour, label=by)
        axis.set(xscale="log", xlabel="fit seconds (log)", ylabel="test PR-AUC", title="This session's runs")
        axis.legend(fontsize=8, loc="lower right")
        figure.tight_layout()
        show_figure(self.plot, figure)

    def text(self) -> str:
        runs = self.runs()
        return ("Try it: an experiment of your own, tracked\n"
                f"  model kind = {self.kind.value}, settings: {self.params()}; press Run in JupyterLab\n"
                f"  runs this session: {len(runs)}; best: {runs.iloc[0]['run'] if len(runs) else 'none'}")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {WIDGET_MIMETYPE: self.box._repr_mimebundle_()[WIDGET_MIMETYPE], "text/plain": self.text()}


def _slider(name: str, spec: tuple[str, float, float, float, float], wide: dict[str, Any]) -> Any:
    import ipywidgets as widgets

    kind, default, low, high, step = spec
    if kind == "int":
        slider = widgets.IntSlider(value=int(default), min=int(low), max=int(high), step=int(step),
                                   description=name, **wide)
    else:
        import math

        slider = widgets.FloatLogSlider(value=default, base=10, min=math.log10(low), max=math.log10(high),
                                        step=0.1, description=name, **wide)
    slider.add_class(f"lifecycle-playground-knob-{name.replace('_', '-')}")
    return slider


def _playground_run_ids(settings: Any, session: str) -> list[str]:
    from lifecycle.tracking.runs import mlflow_client, use_experiment

    experiment = use_experiment(settings)
    found = mlflow_client(settings).search_runs(
        [experiment], filter_string=f"tags.session = '{session}' and tags.playground = '03'")
    return [run.info.run_id for run in found]


def _sentence(last: dict[str, Any], runs: pd.DataFrame) -> str:
    rank = int((runs["pr_auc"] > last["pr_auc"]).sum()) + 1
    return (f"Your run {last['run']} scored test PR-AUC {last['pr_auc']:.3f} in {last['fit_seconds']:.2f} s: "
            f"number {rank} of the {len(runs)} runs of this session. It is in MLflow now, beside the lesson's runs.")


def tracking_playground(train: pd.DataFrame, test: pd.DataFrame, seed: int, session: str, settings: Any = None,
                        tags: dict[str, str] | None = None) -> TrackingPlayground:
    """The "Try it" of lesson 03 (display it): see :class:`TrackingPlayground`.

    Args:
        train: the lesson's training window; test: its test window.
        seed: random seed of the models.
        session: the lesson's session tag (its runs are compared with the learner's).
        settings: where the runs are logged.
        tags: extra run tags (the lesson's run tags).
    """
    return TrackingPlayground(train, test, seed, session, settings, tags)
