"""Reproducible runs: the course records the same results under nbval as under ``lifecycle run``.

``make test`` executes the lessons twice, each time from a clean workspace: once under nbval (its kernels
record into files of their own, see the root conftest.py) and once as ``lifecycle run --profile smoke``
(the shared ``smoke_course`` fixture, also the proof that ``make run`` works from nothing). This test
compares the two records, after nbval has run. Run alone (no nbval in the session), it runs the smoke
course a second time instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Results that measure time or speed on this machine; everything else must repeat exactly.
VOLATILE = {"gbc_fit_seconds", "hgb_fit_seconds", "repro_first_seconds", "repro_cached_seconds",
            "rest_rps", "grpc_rps", "tutorial_rps", "rest_p50_ms", "grpc_p50_ms",
            "gbc_vs_hgb_same_budget_speedup", "gbc_scaling_exponent",
            "rest_constant_rps", "grpc_constant_rps", "rest_batch_rows_per_s", "grpc_batch_rows_per_s",
            # 06: the share of users flagged in shadow, over however many looks shadow took (latency's noise can
            # add one); the simulated rates are seeded and repeat exactly. The good rollout's outcome too: the
            # latency gate compares two live servers at 50%, and make test runs the smoke course beside nbval on
            # two cores, where one server can stall for a while (tests/unit/test_canary.py tests the gate itself).
            "shadow_flag_rate_gap", "good_rollout_promoted", "good_rollout_steps", "good_rollout_stopped_by"}
# The names the issues give, per lesson: instructors and checks read them.
CONTRACT = {
    "01_data_versioning": {"data_v1_md5", "data_v2_md5", "restored_v1_md5", "pulled_v1_md5"},
    "02_feature_engineering": {"pr_auc_naive_offline", "pr_auc_naive_served", "pr_auc_point_in_time",
                               "pr_auc_tree_engineered", "pr_auc_mlp_raw", "ablation_pr_auc_drop",
                               "pr_auc_by_model_and_features", "leakage_gap_mean", "leakage_gap_ci95", "leakage_seeds"},
    "03_experiment_tracking": {"runs_logged", "champion_version", "champion_pr_auc", "gbc_fit_seconds",
                               "hgb_fit_seconds", "gbc_rows", "hgb_rows", "gbc_vs_hgb_same_budget_speedup",
                               "gbc_scaling_exponent"},
    "04_orchestration": {"repro_first_seconds", "repro_cached_seconds", "repro_stages_rerun_after_param_change",
                         "prefect_flow_state", "prefect_retries_observed", "clone_stages_rerun"},
    "05_serving": {"rest_rps", "grpc_rps", "tutorial_rps", "rest_p50_ms", "grpc_p50_ms", "rest_constant_rps",
                   "grpc_constant_rps", "rest_batch_rows_per_s", "grpc_batch_rows_per_s", "json_bytes_per_row",
                   "protobuf_bytes_per_row"},
    "06_canary_release": {"good_rollout_promoted", "good_rollout_steps", "bad_rollout_rolled_back_at",
                          "bad_rollout_requests_to_canary", "bad_rollout_total_requests", "dropped_requests",
                          "gate_false_rollback_rate", "gate_detection_rate", "gate_median_answers_to_decision",
                          "shadow_flag_rate_gap", "bad_rollout_verdicts"},
    "07_monitoring": {"baseline_action", "data_drift_action", "concept_drift_action", "drifted_features_data_drift",
                      "precision_before_drift", "precision_after_drift", "precision_after_retrain",
                      "days_to_detect", "cbpe_abs_error_data_drift", "cbpe_gap_concept_drift", "label_coverage",
                      "baseline_false_alarm_rate"},
}
# Where the smoke profile may differ from a lesson's own defaults (what nbval runs): only what changes
# volatile results; none today (lesson 07's smoke rows are its own default).
PROFILE_DIFFERS: dict[str, set[str]] = {}


def _defaults(notebook: Path) -> dict:
    """The values of a lesson's ``parameters`` cell."""
    cell = next(c for c in nbformat.read(notebook, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    values: dict = {}
    exec(cell.source, {}, values)  # the cell is plain assignments (tests/notebooks/test_conventions.py)
    return values


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda path: path.stem)
def test_the_smoke_profile_runs_each_lesson_with_its_own_defaults(notebook):
    """So that nbval's run (the defaults) and the smoke course (the profile) are like with like."""
    profile = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]["smoke"]
    wanted = {**{k: v for k, v in profile.items() if k != "notebooks"}, **profile["notebooks"].get(notebook.stem, {})}
    defaults = _defaults(notebook)
    differ = {key for key, value in wanted.items() if key in defaults and defaults[key] != value}
    assert differ == PROFILE_DIFFERS.get(notebook.stem, set())


def _nbval_results(config) -> dict[str, dict] | None:
    """What each lesson recorded under nbval in this session (None: nbval did not run the lessons)."""
    if [path.stem for path in LESSONS] != config.nbval_lessons:
        return None
    results = {}
    for lesson in config.nbval_lessons:
        record = config.nbval_records / "notebooks" / f"{lesson}.json"
        assert record.is_file(), f"{lesson} recorded nothing under nbval: it failed there (see its cells above)"
        results[lesson] = json.loads(record.read_text())
    return results


@pytest.mark.slow
@pytest.mark.after_notebooks
@pytest.mark.timeout(1_200)
def test_the_course_records_the_same_results_under_nbval_and_lifecycle_run(smoke_course, smoke_course_runner,
                                                                            request, tmp_path):
    course = smoke_course.summary["notebooks"]
    assert sorted(course) == [path.stem for path in LESSONS]
    for name, run in course.items():
        assert run["status"] == "ok", f"{name}: {run['error']}"
        missing = CONTRACT.get(name, set()) - set(run["results"])
        assert not missing, f"{name} did not record {sorted(missing)}"
    other = _nbval_results(request.config)
    if other is None:  # run alone: a second clean run of the course instead
        other = {name: run["results"] for name, run in smoke_course_runner(tmp_path / "second").summary["notebooks"]
                 .items()}
    for name, run in course.items():
        stable = {k: v for k, v in run["results"].items() if k not in VOLATILE}
        again = {k: v for k, v in other[name].items() if k not in VOLATILE}
        assert stable == again, f"{name} recorded different results in two clean runs"
    results = {**course["06_canary_release"]["results"], **course["01_data_versioning"]["results"]}
    assert results["dropped_requests"] == 0
    # The good challenger is promoted, unless the latency gate stopped it: judged at 50% on two live servers that
    # share these cores with nbval's own course; any other gate stopping it is a real fault.
    good = {key: results[key] for key in ("good_rollout_promoted", "good_rollout_steps", "good_rollout_stopped_by")}
    assert good["good_rollout_promoted"] is True or good["good_rollout_stopped_by"] == ["latency"], good
    assert results["bad_rollout_rolled_back_at"] in ("shadow", 5) and results["gate_false_rollback_rate"] <= 0.05
    assert results["data_v1_md5"] == results["restored_v1_md5"] == results["pulled_v1_md5"] != results["data_v2_md5"]
