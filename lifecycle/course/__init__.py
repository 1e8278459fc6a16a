"""The course around the fraud system: what a learner and an instructor use to learn it.

Nothing in the system's stages imports this package (a test pins it); it builds on them.

Modules: :mod:`~lifecycle.course.runner` (``lifecycle run``: papermill over the lessons, ``record()``,
``build/summary.json``), :mod:`~lifecycle.course.quiz_bank` (the question banks, ``quizzes/*.yaml``),
:mod:`~lifecycle.course.quiz` (quiz widgets) and :mod:`~lifecycle.course.progress` (a learner's score),
:mod:`~lifecycle.course.exercises` (checkers that say what is wrong), :mod:`~lifecycle.course.environment`
(lesson 00's environment check and map), :mod:`~lifecycle.course.experiments` (lesson 02's measurements),
:mod:`~lifecycle.course.tutorial` (the tutorial's own server, as a baseline),
:mod:`~lifecycle.course.serving_bench`, :mod:`~lifecycle.course.serving_costs` and
:mod:`~lifecycle.course.serving_report` (lesson 05's benchmark,
``lifecycle bench serving``, and where a request's time goes), :mod:`~lifecycle.course.durability` (lesson 07's
crash test of the prediction log), :mod:`~lifecycle.course.site` (``lifecycle site``: the executed course as a
static site), :mod:`~lifecycle.course.grade` (``lifecycle grade``: a class's gradebook),
:mod:`~lifecycle.course.lint` (the reviewer's rules, checked on the lessons), :mod:`~lifecycle.course.playgrounds`
(the "Try it" widgets at the end of lessons 02, 03, 06 and 07).
"""

from __future__ import annotations

from lifecycle._lazy import lazy_exports

# name → module that defines it: what the lessons use, imported on first use (no widgets, no papermill).
_EXPORTS = {
    **{name: "lifecycle.course.runner" for name in ("record", "run_course")},
    **{name: "lifecycle.course.quiz" for name in ("show_quiz", "build_quiz")},
    **{name: "lifecycle.course.quiz_bank" for name in ("Question", "load_bank", "list_lessons")},
    **{name: "lifecycle.course.progress" for name in ("ProgressStore", "progress_report")},
    **{name: "lifecycle.course.environment" for name in (
        "STAGES", "check_environment", "draw_lifecycle_map", "one_thread_per_pool")},
    **{name: "lifecycle.course.experiments" for name in (
        "fit_and_score", "measure_leakage", "compare_features_and_models", "ablate_feature_groups",
        "leakage_over_seeds", "leakage_verdict", "mean_interval", "raw_columns")},
    "crash_test": "lifecycle.course.durability",
    "start_tutorial_server": "lifecycle.course.tutorial",
    **{name: "lifecycle.course.serving_bench" for name in (
        "QUICK_CONFIGS", "benchmark_transactions", "start_benchmark_servers", "benchmark_servers")},
    "time_stages": "lifecycle.course.serving_costs",
    "feature_playground": "lifecycle.course.playgrounds.features",
    "tracking_playground": "lifecycle.course.playgrounds.tracking",
    "canary_playground": "lifecycle.course.playgrounds.canary",
    "drift_playground": "lifecycle.course.playgrounds.monitoring",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("lifecycle.course", _EXPORTS, globals())
