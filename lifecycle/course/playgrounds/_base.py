"""What every playground shares: controls with defaults, a Reset, numbers a test can read, a sentence.

A playground is a pure function of its settings (``compute``: the numbers it shows, fast enough to
feel live) wrapped in widgets. Changing a control calls ``compute`` and redraws; *Reset* puts every
control back to the lesson's default. Headless (papermill, nbval, ``lifecycle run``) the display
carries a plain-text version of the default state, so an executed lesson shows deterministic numbers
and nothing waits for input.

The numbers are shown as ``<span class="lifecycle-playground-value" data-name="…">`` elements, so a
browser test (and a learner's stylesheet) can find each one by name.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from lifecycle.course.playgrounds._figures import LivePlot, show_figure, show_png
from lifecycle.errors import ConfigError

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
__all__ = ["LivePlot", "Playground", "format_value", "log_setting", "show_figure", "show_png", "values_html",
           "values_text"]


def format_value(value: Any) -> str:
    """How a number is shown (and how a test reads it back): 3 significant decimals, thousands apart."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.3f}"
    return str(value)


def values_html(values: dict[str, Any], labels: dict[str, str]) -> str:
    """A two-column table of the named values, each in a span a test can find by ``data-name``."""
    rows = "".join(
        f"<tr><td>{html.escape(labels.get(name, name))}</td><td><span class='lifecycle-playground-value' "
        f"data-name='{name}'>{html.escape(format_value(value))}</span></td></tr>"
        for name, value in values.items() if name in labels)
    return f"<table class='lifecycle-playground-values'>{rows}</table>"


def values_text(values: dict[str, Any], labels: dict[str, str]) -> str:
    """The same values as plain text, one per line (what papermill and nbval keep)."""
    width = max((len(labels[name]) for name in values if name in labels), default=0)
    return "\n".join(f"{labels[name]:<{width}}  {format_value(value)}" for name, value in values.items()
                     if name in labels)


class Playground:
    """Controls, a Reset, a plot, the numbers and one sentence; subclasses say what is computed and drawn.

    Args:
        title: shown above the controls.
        controls: name → ipywidget, in display order; their values at construction are the defaults.
        labels: value name → the label shown beside it (only these values are shown).
        compute: ``compute(**settings) -> dict`` of values (including ``"sentence"``); settings are the
            controls' values by name.
        draw: ``draw(values, settings)`` draws the plot (matplotlib) for these values, or None.
        css: the playground's own CSS class (``lifecycle-playground`` is always added).
        extra_buttons: buttons shown beside Reset.
        adjust: ``adjust(name, value)``, called when control ``name`` changes and before the update, to set
            the controls that depend on it (a slider whose meaning follows a dropdown).
        pending: ``pending(**settings)`` returns a line to show while the update computes (e.g. "computing …"
            when a setting needs new work), or None when it is instant.
        lesson: with it, a *Log this setting* button keeps the setting as an MLflow run tagged
            ``playground=<lesson>`` (:func:`log_setting`), in ``tracking`` settings' store.
        tracking: the :class:`~lifecycle.config.Settings` the runs are logged with (None: the defaults).
    """

    def __init__(self, title: str, controls: dict[str, Any], labels: dict[str, str],
                 compute: Callable[..., dict[str, Any]], draw: Callable[[dict, dict], Any] | None = None,
                 css: str = "", extra_buttons: tuple[Any, ...] = (),
                 adjust: Callable[[str, Any], None] | None = None,
                 pending: Callable[..., str | None] | None = None, lesson: str | None = None,
                 tracking: Any = None) -> None:
        import ipywidgets as widgets

        self.title, self.controls, self.labels = title, controls, labels
        self._compute, self._draw, self._adjust, self._pending = compute, draw, adjust, pending
        self.lesson, self.tracking = lesson, tracking
        self.logged = widgets.HTML()
        self.logged.add_class("lifecycle-playground-logged")
        if lesson is not None:
            keep = widgets.Button(description="Log this setting", tooltip="keep this setting as an MLflow run")
            keep.add_class("lifecycle-playground-log")
            keep.on_click(lambda _button: self.log())
            extra_buttons = (*extra_buttons, keep)
        self.defaults = {name: control.value for name, control in controls.items()}
        self.reset = widgets.Button(description="Reset", tooltip="back to the lesson's defaults")
        self.reset.add_class("lifecycle-playground-reset")
        self.reset.on_click(lambda _button: self.restore_defaults())
        self.numbers = widgets.HTML()
        self.numbers.add_class("lifecycle-playground-numbers")
        self.sentence = widgets.HTML()
        self.sentence.add_class("lifecycle-playground-sentence")
        self.plot = widgets.Output()
        self.plot.add_class("lifecycle-playground-plot")
        for name, control in controls.items():
            control.add_class(f"lifecycle-playground-control-{name.replace('_', '-')}")
            control.observe(lambda change, name=name: self._changed(name, change["new"]), names="value")
        header = widgets.HTML(f"<b>{html.escape(title)}</b>")
        buttons = widgets.HBox([self.reset, *extra_buttons])
        self.box = widgets.VBox([header, *controls.values(), buttons, self.logged, self.sentence, self.numbers,
                                 self.plot])
        self.box.add_class("lifecycle-playground")
        if css:
            self.box.add_class(css)
        self.values: dict[str, Any] = {}
        self.update_seconds: list[float] = []
        self._holding = False
        self.update()
        _settle_heap()

    @property
    def settings(self) -> dict[str, Any]:
        """The controls' current values by name."""
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, name: str, value: Any) -> None:
        if self._holding:
            return
        if self._adjust is not None:
            self._holding = True
            try:
                self._adjust(name, value)
            finally:
                self._holding = False
        self.update()

    def update(self) -> dict[str, Any]:
        """Recompute from the controls and redraw; returns the values shown."""
        if self._holding:
            return self.values
        clock = time.perf_counter()
        settings = self.settings
        note = self._pending(**settings) if self._pending is not None else None
        if note:  # sent to the browser at once: the learner sees why this update takes longer
            self.sentence.value = f"<p class='lifecycle-playground-pending'>{html.escape(note)}</p>"
        self.values = self._compute(**settings)
        self.numbers.value = values_html(self.values, self.labels)
        self.sentence.value = f"<p>{html.escape(str(self.values.get('sentence', '')))}</p>"
        if self._draw is not None:
            self._redraw(settings)
        self.update_seconds.append(time.perf_counter() - clock)
        return self.values

    def _redraw(self, settings: dict[str, Any]) -> None:
        if isinstance(self._draw, LivePlot):
            show_png(self.plot, self._draw.png(self.values, settings))
        else:
            show_figure(self.plot, self._draw(self.values, settings))

    def restore_defaults(self) -> dict[str, Any]:
        """Put every control back to its default, then update once."""
        self._holding = True
        try:
            for name, value in self.defaults.items():
                if self._adjust is not None:
                    self._adjust(name, value)
                self.controls[name].value = value
        finally:
            self._holding = False
        return self.update()

    def log(self) -> str:
        """Keep the current setting and its numbers as an MLflow run (what *Log this setting* does); returns
        the run id."""
        if self.lesson is None:
            raise ConfigError(f"the playground {self.title!r} was built without a lesson to log its settings under")
        params = {name: ",".join(map(str, value)) if isinstance(value, tuple | list) else value
                  for name, value in self.settings.items()}
        metrics = {name: value for name, value in self.values.items() if name in self.labels}
        run_id = log_setting(self.lesson, params, metrics, self.tracking)
        self.logged.value = (f"<p>Logged as an MLflow run of experiment '{html.escape(_experiment_name())}', tagged "
                             f"playground = '{html.escape(self.lesson)}' (run id {html.escape(run_id[:8])}…).</p>")
        return run_id

    def text(self) -> str:
        """The playground's current state as plain text."""
        settings = ", ".join(f"{name} = {format_value(value)}" for name, value in self.settings.items())
        return (f"{self.title}\n  settings: {settings}\n  {self.values.get('sentence', '')}\n"
                + "\n".join(f"  {line}" for line in values_text(self.values, self.labels).splitlines()))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # JupyterLab renders the widgets; papermill, nbval and consoles keep the text.
        return {WIDGET_MIMETYPE: self.box._repr_mimebundle_()[WIDGET_MIMETYPE], "text/plain": self.text()}


def _settle_heap() -> None:
    """Leave what the kernel holds so far (the libraries, the lesson's data and models) out of Python's full
    garbage collections: one pass over all of it took ~0.12 s and fell in one update in eight, the slowest
    part of those updates. The objects are still freed when nothing refers to them; only cycles among them
    are no longer looked for (``gc.freeze``, after a last collection). It changes the learner's whole kernel,
    once per playground built: what the kernel held before is no longer collected as cycles, a small leak at
    most, which a lesson's kernel can afford for controls that answer without a pause.
    """
    import gc

    gc.collect()
    gc.freeze()


def _experiment_name() -> str:
    from lifecycle.tracking.runs import EXPERIMENT

    return EXPERIMENT


def log_setting(lesson: str, params: dict[str, Any], metrics: dict[str, float], settings: Any = None,
                tags: dict[str, str] | None = None) -> str:
    """Keep a playground setting as an MLflow run of the lesson's experiment; returns the run id.

    The run is tagged ``playground=<lesson>``, so ``mlflow.search_runs(filter_string="tags.playground =
    '02'")`` finds every setting a learner kept.
    """
    import mlflow

    from lifecycle.tracking.runs import use_experiment

    experiment_id = use_experiment(settings)
    name = f"playground-{lesson}-" + "-".join(f"{key}={format_value(value)}" for key, value in params.items())[:80]
    with mlflow.start_run(experiment_id=experiment_id, run_name=name,
                          tags={"playground": lesson, **(tags or {})}) as run:
        mlflow.log_params({key: str(value) for key, value in params.items()})
        mlflow.log_metrics({key: float(value) for key, value in metrics.items()
                            if isinstance(value, int | float) and not isinstance(value, bool)})
    return run.info.run_id
