"""Lesson 06's playground: the canary policy against a challenger that fails the way you choose.

Pick the challenger's failure and its size, the policy's false-rollback budget (the gates' α) and the
plan, with or without a shadow step: the policy simulator (:func:`lifecycle.canary.simulate.simulate_policy`,
the kit's own gates on sampled traffic, no servers) runs a few hundred rollouts and shows how often the
failure is caught, how often a good challenger would be rolled back, how many answers a decision takes,
how many answers users got from the bad model, and one simulated rollout look by look.

Taught in notebooks/06_canary_release.ipynb ("Try it").
"""

from __future__ import annotations

import functools
from typing import Any

from lifecycle.course.playgrounds._base import LivePlot, Playground

LABELS = {"caught": "rollouts that rolled the challenger back", "caught_by_test": "… by a gate's test",
          "false_rollback": "good challenger rolled back",
          "false_rollback_by_test": "… by a gate's test (α bounds this)",
          "median_answers": "median canary answers to a decision", "median_exposure": "median answers users got",
          "exposure_share": "median share of the rollout's answers", "decided_at": "most common deciding step"}
# kind → (what the size means, its slider: low, high, step); a kind without a size has none.
SIZES = {"good": ("no failure", 0.0, 0.0, 0.0), "never_flags": ("flags this × as often", 0.0, 1.0, 0.05),
         "flags_10x": ("flags this × as often", 1.0, 20.0, 0.5), "errors_4x": ("fails this × as often", 1.0, 20.0, 0.5),
         "latency_plus_50pct": ("latency this × stable's", 1.0, 3.0, 0.05),
         "precision_minus_5pts": ("precision lower by (points)", 0.0, 0.5, 0.01)}
PLANS = {"shadow → 5 → 25 → 50 → 100": ("shadow", 5, 25, 50, 100), "5 → 25 → 50 → 100": (5, 25, 50, 100)}


def evaluate_policy(failure: str = "never_flags", size: float | None = None, alpha: float = 0.05,
                    plan: str = "shadow → 5 → 25 → 50 → 100", rollouts: int = 200, seed: int = 0) -> dict[str, Any]:
    """What the playground shows for one setting: :func:`~lifecycle.canary.simulate.simulate_policy` for
    the failure and, beside it, for a good challenger (the false-rollback rate), on the same plan and α.

    Args:
        failure: a key of :data:`lifecycle.canary.simulate.KINDS`.
        size: the failure's size (see :data:`SIZES`); None for the kind's default.
        alpha: the rollout's false-rollback budget, shared by the gates.
        plan: a key of :data:`PLANS`.
        rollouts: simulated rollouts per kind.
        seed: the random seed (the same settings give the same numbers).
    """
    steps = PLANS[plan]
    runs = _policy_runs(failure, size, alpha, steps, rollouts, seed)
    false_rollback, by_test = _false_rollback(alpha, steps, rollouts, seed)
    values = {
        "caught": float((runs["outcome"] == "rolled back").mean()),
        "caught_by_test": float(((runs["outcome"] == "rolled back") & runs["by_test"]).mean()),
        "false_rollback": false_rollback,
        "false_rollback_by_test": by_test,
        "median_answers": int(runs["canary_answers"].median()), "median_exposure": int(runs["exposure"].median()),
        "exposure_share": float((runs["exposure"] / runs["requests"]).median()),
        "decided_at": str(runs["step"].mode().iloc[0]), "timeline": runs.attrs["timeline"],
    }
    if failure == "good":
        held_out = false_rollback - by_test
        values["sentence"] = (f"A good challenger is rolled back in {false_rollback:.1%} of rollouts at α = {alpha:g}: "
                              f"{by_test:.1%} by a gate's test (α bounds that share) and {held_out:.1%} because a "
                              "step ran out of traffic before the evidence was enough to advance (the bounded hold).")
    else:
        shadow = "; its shadow answers reached nobody" if steps[0] == "shadow" else ""
        lack = values["caught"] - values["caught_by_test"]
        why = (f" ({values['caught_by_test']:.0%} by a gate's test, {lack:.0%} because a step ran out of traffic "
               "before the evidence was enough to advance, as it would for a good challenger)" if lack >= 0.005 else "")
        verdict = (f"is rolled back in {values['caught']:.0%} of rollouts{why}" if values["caught"] >= 0.5 else
                   f"slips through: it is promoted in {1 - values['caught']:.0%} of rollouts{why}")
        values["sentence"] = (f"A challenger that {_describe(failure, size)} {verdict}, after a median "
                              f"{values['median_answers']:,} canary answers, most often decided at "
                              f"{values['decided_at']}{shadow}; users got a median {values['median_exposure']:,} "
                              f"of its answers. A good challenger would be rolled back in {false_rollback:.1%}.")
    return values


@functools.lru_cache(maxsize=64)
def _policy_runs(failure: str, size: float | None, alpha: float, steps: tuple, rollouts: int, seed: int) -> Any:
    """The simulated rollouts of one setting, kept: coming back to a setting costs nothing (read, never changed)."""
    from lifecycle.canary.simulate import simulate_policy

    return simulate_policy(failure, size, rollouts, seed, alpha=alpha, steps=steps)


@functools.lru_cache(maxsize=32)
def _false_rollback(alpha: float, steps: tuple, rollouts: int, seed: int) -> tuple[float, float]:
    """A good challenger's rollback rate for a policy, and the part of it a gate's test decided (the rest is
    the bounded hold): it does not depend on the failure, so it is cached."""
    from lifecycle.canary.simulate import simulate_policy

    good = simulate_policy("good", None, rollouts, seed + 1, alpha=alpha, steps=steps)
    rolled = good["outcome"] == "rolled back"
    return float(rolled.mean()), float((rolled & good["by_test"]).mean())


def _describe(failure: str, size: float | None) -> str:
    from lifecycle.canary.simulate import KINDS

    size = KINDS[failure][1] if size is None else size
    if failure in ("never_flags", "flags_10x"):
        return "never flags" if size == 0 else f"flags {size:g}× as often as stable"
    if failure == "errors_4x":
        return f"fails {size:g}× as often as stable"
    if failure == "latency_plus_50pct":
        return f"answers {size:g}× as slowly as stable"
    return f"flags as often but with precision {size * 100:.0f} points lower"


_COLOURS = {"advance": "#1e7b34", "hold": "#8c8c8c", "rollback": "#c0392b"}
_ALL_STEPS = ["shadow", "5%", "25%", "50%", "100%"]


class TimelinePlot(LivePlot):
    """One simulated rollout, look by look: the step it is at against the requests so far, each look's
    verdict a dot. Built once; an update moves the line and the dots (see :class:`LivePlot`)."""

    figsize = (6.5, 2.8)

    def build(self, figure: Any, values: dict[str, Any], settings: dict[str, Any]) -> None:
        import numpy as np

        self.axis = axis = figure.add_subplot()
        (self.line,) = axis.step([], [], where="post", color="#3b6ea5", lw=1.2)
        self.dots = {verdict: axis.scatter(np.empty(0), np.empty(0), color=colour, s=30, zorder=3, label=verdict)
                     for verdict, colour in _COLOURS.items()}
        axis.set(xlabel="requests in the rollout", ylabel="step", title="One simulated rollout, look by look")
        axis.set_yticks(range(len(_ALL_STEPS)), _ALL_STEPS)  # the widest labels: the layout fits every plan
        self.shown: tuple[str, ...] = ()
        figure.tight_layout()

    def show_text(self, visible: bool) -> bool:
        # The title, the axis labels and the steps' names are fixed for a plan (text_key); the requests' ticks
        # follow the rollout and the legend lies over the data: those are drawn every time.
        axis = self.axis
        axis.tick_params(labelleft=visible)
        for text in (axis.title, axis.xaxis.label, axis.yaxis.label):
            text.set_visible(visible)
        return True

    def text_key(self) -> Any:
        return self.steps

    def refresh(self, values: dict[str, Any], settings: dict[str, Any]) -> None:
        import numpy as np

        timeline, axis = values["timeline"], self.axis
        steps = _ALL_STEPS if settings["plan"].startswith("shadow") else _ALL_STEPS[1:]
        x = np.array([look["requests"] for look in timeline], dtype=float)
        y = np.array([steps.index(look["step"]) for look in timeline], dtype=float)
        verdicts = np.array([look["verdict"] for look in timeline])
        self.line.set_data(x, y)
        for verdict, dots in self.dots.items():
            dots.set_offsets(np.column_stack([x, y])[verdicts == verdict])
        axis.set_autoscale_on(True)
        axis.relim()
        axis.autoscale_view(scaley=False)
        axis.set_yticks(range(len(steps)), steps)
        axis.set_ylim(-0.4, len(steps) - 0.6)  # every step of the plan, however far this rollout got
        self.steps = tuple(steps)
        shown = tuple(verdict for verdict in _COLOURS if (verdicts == verdict).any())
        if shown != self.shown:  # the legend names the verdicts this rollout had
            axis.legend(handles=[self.dots[verdict] for verdict in shown], fontsize=8, loc="upper left")
            self.shown = shown


def canary_playground(failure: str = "never_flags", alpha: float = 0.05, rollouts: int = 200, seed: int = 0,
                      settings: Any = None) -> Playground:
    """The "Try it" of lesson 06 (display it): see :func:`evaluate_policy`.

    Args:
        failure: the failure the playground starts with.
        alpha: the false-rollback budget it starts with.
        rollouts: simulated rollouts per update.
        seed: the simulator's seed.
        settings: where *Log this setting* logs (an MLflow run tagged ``playground=06``).
    """
    import ipywidgets as widgets

    from lifecycle.canary.simulate import KINDS

    wide = {"style": {"description_width": "initial"}, "layout": widgets.Layout(width="460px")}
    controls = {
        "failure": widgets.Dropdown(options=[(label, kind) for kind, (label, _) in KINDS.items()], value=failure,
                                    description="the challenger", **wide),
        "size": size_control(failure),
        "alpha": widgets.SelectionSlider(options=[0.01, 0.02, 0.05, 0.1, 0.2], value=alpha,
                                         description="false-rollback budget α", **wide),
        "plan": widgets.Dropdown(options=list(PLANS), value="shadow → 5 → 25 → 50 → 100", description="plan", **wide),
    }
    # The good challenger's rollbacks depend on α and the plan only: simulated once for each of their 10
    # settings here, so a change of any control then runs one simulation (the failure's), not two.
    for budget in controls["alpha"].options:
        for steps in PLANS.values():
            _false_rollback(budget, steps, rollouts, seed)

    def compute(failure: str, size: float, alpha: float, plan: str) -> dict[str, Any]:
        return evaluate_policy(failure, None if failure == "good" else size, alpha, plan, rollouts, seed)

    def adjust(name: str, value: Any) -> None:  # the size slider follows the failure's meaning
        if name == "failure":
            controls["size"].show(value)

    return Playground("Try it: the canary policy", controls, LABELS, compute, TimelinePlot(),
                      css="lifecycle-playground-canary", adjust=adjust, lesson="06", tracking=settings)


def size_control(failure: str) -> Any:
    """The size control of the 06 playground, showing ``failure``'s slider (see ``SizeSliders`` below)."""
    return _size_sliders()(failure)


@functools.cache
def _size_sliders() -> type:
    """The class of :func:`size_control`, defined on first use: ipywidgets is imported only by a playground."""
    import ipywidgets as widgets
    import traitlets

    class SizeSliders(widgets.VBox):
        """The failure's size: one slider per failure kind, the chosen kind's shown; ``value`` is its value.

        A slider's range never changes. One slider re-ranged for each kind lost the size it was given in
        Chromium: the page clamped its old value into the new range and sent that back after the kernel's
        update (never flags' 0 came back as errors ×4's minimum, 1).
        """

        value = traitlets.Float(0.0)  # the kernel's alone: the sliders are what the page shows

        def __init__(self, failure: str) -> None:
            from lifecycle.canary.simulate import KINDS

            self.defaults = {kind: KINDS[kind][1] if KINDS[kind][1] is not None else SIZES[kind][1] for kind in SIZES}
            self.sliders = {kind: widgets.FloatSlider(value=self.defaults[kind], min=low, max=max(high, low),
                                                      step=step or 0.01, description=label, disabled=kind == "good",
                                                      style={"description_width": "initial"},
                                                      layout=widgets.Layout(width="460px"))
                            for kind, (label, low, high, step) in SIZES.items()}
            super().__init__(list(self.sliders.values()))
            for kind, slider in self.sliders.items():
                slider.observe(lambda change, kind=kind: self._moved(kind, change["new"]), names="value")
            self.failure = failure
            self.show(failure)

        @property
        def slider(self) -> Any:
            """The chosen failure's slider."""
            return self.sliders[self.failure]

        @property
        def description(self) -> str:
            return self.slider.description

        @property
        def min(self) -> float:
            return self.slider.min

        @property
        def max(self) -> float:
            return self.slider.max

        def show(self, failure: str) -> None:
            """Show ``failure``'s slider, at that failure's default size."""
            self.failure = failure
            for kind, slider in self.sliders.items():
                slider.layout.display = None if kind == failure else "none"
            self.slider.value = self.defaults[failure]
            self.value = self.slider.value

        def _moved(self, kind: str, value: float) -> None:
            if kind == self.failure:
                self.value = value

        @traitlets.observe("value")
        def _put(self, change: dict[str, Any]) -> None:  # set from the kernel (a reset, a benchmark)
            self.slider.value = change["new"]

    return SizeSliders
