"""Lesson 07's playground, its expensive part: the production period under any drift, each scored once.

:class:`DriftSetting` is one drift in the playground's units (what changes, how strongly, sudden or
gradual); :class:`DriftWorlds` generates and scores the period under a drift on first use
(:func:`~lifecycle.data.generate_period`, then :func:`~lifecycle.monitoring.period.score_with_shared`: features,
the model's scores, the weekly drift tests of the days after the drift began; the quiet days before it
are the same in every world and scored once) and keeps it, so coming back to a drift is instant;
:func:`drift_worlds` starts it with lesson 07's own scored worlds. The cheap part, the label delay and the
policy, is :func:`~lifecycle.course.playgrounds.monitoring.evaluate_drift`'s.

Taught in notebooks/07_monitoring.ipynb ("Try it").
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lifecycle.errors import ConfigError

SCENARIOS = {"baseline": "nothing (a quiet world)",
             "data_drift": "the customers: dearer amounts, later hours (data drift)",
             "concept_drift": "the fraud: new tactics (concept drift)"}

def _generator_default(name: str) -> Any:
    from lifecycle.data import generate_transactions

    return inspect.signature(generate_transactions).parameters[name].default


@dataclass(frozen=True)
class DriftSetting:
    """One drift, in the playground's units: ``scenario`` (a key of :data:`SCENARIOS`), amounts dearer by
    ``inflation_pct`` %, a third of the customers ``hour_shift`` hours later, ``new_tactics_pct`` % of the
    fraud with new tactics, reaching full strength after ``ramp_days`` days (0: all at once)."""

    scenario: str = "concept_drift"
    inflation_pct: int = 45
    hour_shift: int = 5
    new_tactics_pct: int = 60
    ramp_days: int = 0

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"the playground's drift is one of {sorted(SCENARIOS)}, not {self.scenario!r}")

    def key(self) -> DriftSetting:
        """The same drift with the settings its scenario ignores put back to their defaults (the cache key)."""
        default = DriftSetting()
        if self.scenario == "baseline":
            return DriftSetting("baseline")
        if self.scenario == "data_drift":
            return DriftSetting("data_drift", self.inflation_pct, self.hour_shift, default.new_tactics_pct,
                                self.ramp_days)
        return DriftSetting("concept_drift", default.inflation_pct, default.hour_shift, self.new_tactics_pct,
                            self.ramp_days)

    def strength(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~lifecycle.data.generate_period` for this drift."""
        if self.scenario == "baseline":
            return {}
        if self.scenario == "data_drift":
            return {"inflation": self.inflation_pct / 100, "hour_shift": int(self.hour_shift),
                    "ramp_days": self.ramp_days}
        return {"concept_shift": self.new_tactics_pct / 100, "ramp_days": self.ramp_days}

    @classmethod
    def of_world(cls, scenario: str, strength: dict[str, Any]) -> DriftSetting:
        """The setting of one of lesson 07's worlds (``scenario`` and its ``generate_period`` strengths)."""
        value = {name: strength.get(name, _generator_default(name))
                 for name in ("inflation", "hour_shift", "concept_shift", "ramp_days")}
        return cls(scenario, int(round(100 * value["inflation"])), int(value["hour_shift"]),
                   int(round(100 * value["concept_shift"])), int(value["ramp_days"])).key()


@dataclass
class DriftWorlds:
    """Lesson 07's production period under any drift, each scored once (the expensive part, cached).

    Args:
        model: the monitored model; reference: its :class:`~lifecycle.monitoring.Reference`.
        history: the users' past before the period (lesson 07's January).
        start: the period's first day; weeks: its weekly checks; drift_day: the day (0-based) the drift starts.
        rows: transactions over the whole period; seed: the data's and the labels' seed.
        periods: drift setting → :class:`~lifecycle.monitoring.ScoredPeriod` scored so far.
        shared: the quiet days before the drift, scored once (:class:`~lifecycle.monitoring.period.SharedDays`).
    """

    model: Any
    reference: Any
    history: pd.DataFrame
    start: pd.Timestamp
    weeks: int
    drift_day: int
    rows: int
    seed: int = 42
    periods: dict[DriftSetting, Any] = field(default_factory=dict)
    shared: Any = None

    @property
    def drift_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.start) + pd.Timedelta(days=self.drift_day)

    def has(self, drift: DriftSetting) -> bool:
        """Whether this drift's period is scored already (then a change to it is instant)."""
        return drift.key() in self.periods

    def period(self, drift: DriftSetting) -> Any:
        """The drift's scored period: generated and scored on first use (about a second), then kept."""
        from lifecycle.data import generate_period
        from lifecycle.monitoring.period import SharedDays, score_with_shared

        key = drift.key()
        if key not in self.periods:
            transactions = generate_period(self.rows, self.seed, key.scenario, self.start, 7 * self.weeks,
                                           self.drift_day, **key.strength())
            if self.shared is None:
                self.shared = SharedDays.score(self.model, self.reference, transactions, self.history, self.start,
                                               self.drift_start)
            self.periods[key] = score_with_shared(self.model, self.reference, self.shared, transactions,
                                                  self.history, self.start, self.weeks)
        return self.periods[key]


def drift_worlds(model: Any, reference: Any, history: pd.DataFrame, start: str | pd.Timestamp, weeks: int,
                 drift_day: int, rows: int, seed: int = 42, scored: dict[str, Any] | None = None,
                 worlds: dict[str, tuple[str, dict[str, Any]]] | None = None) -> DriftWorlds:
    """A :class:`DriftWorlds` that starts with lesson 07's scored worlds (``scored``, named as in ``worlds``:
    name → ``(scenario, strength)``), so their settings cost nothing.

    Raises:
        ConfigError: a scored world that ``worlds`` does not describe.
    """
    state = DriftWorlds(model, reference, history, pd.Timestamp(start), weeks, drift_day, rows, seed)
    for name, period in (scored or {}).items():
        if name not in (worlds or {}):
            raise ConfigError(f"scored world {name!r} has no (scenario, strength) in worlds; give worlds="
                              f"{{{name!r}: (scenario, strength), ...}} as lesson 07 defines them")
        state.periods[DriftSetting.of_world(*worlds[name])] = period
        if state.shared is None:
            from lifecycle.monitoring.period import SharedDays

            state.shared = SharedDays.of_period(period, state.history, state.drift_start)
    return state
