"""Reproducible re-runs: the smoke course, run twice from clean workspaces, records the same results.

This runs the whole course twice (a few minutes): it is also the proof that `make run` works
from nothing, and that every lesson's recorded result names are there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Results that measure time or speed on this machine; everything else must repeat exactly.
VOLATILE = {"gbc_fit_seconds", "hgb_fit_seconds", "repro_first_seconds", "repro_cached_seconds",
            "rest_rps", "grpc_rps", "tutorial_rps", "rest_p50_ms", "grpc_p50_ms",
            "gbc_vs_hgb_same_budget_speedup", "gbc_scaling_exponent",
            "rest_constant_rps", "grpc_constant_rps", "rest_batch_rows_per_s", "grpc_batch_rows_per_s",
            # 06: the share of users flagged in shadow, over however many looks shadow took (latency's noise can
            # add one); the simulated rates are seeded and repeat exactly.
            "shadow_flag_rate_gap"}
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


@pytest.mark.slow
@pytest.mark.timeout(2_100)
def test_smoke_course_twice_from_clean_workspaces_records_the_same_results(smoke_course, smoke_course_runner,
                                                                           tmp_path):
    first, second = smoke_course.summary, smoke_course_runner(tmp_path / "second").summary
    assert sorted(first["notebooks"]) == sorted(second["notebooks"])
    for name, run in first["notebooks"].items():
        assert run["status"] == "ok", f"{name}: {run['error']}"
        missing = CONTRACT.get(name, set()) - set(run["results"])
        assert not missing, f"{name} did not record {sorted(missing)}"
        stable = {k: v for k, v in run["results"].items() if k not in VOLATILE}
        again = {k: v for k, v in second["notebooks"][name]["results"].items() if k not in VOLATILE}
        assert stable == again, f"{name} recorded different results on a second clean run"
    lessons = first["notebooks"]
    results = {**lessons["06_canary_release"]["results"], **lessons["01_data_versioning"]["results"]}
    assert results["dropped_requests"] == 0 and results["good_rollout_promoted"] is True
    assert results["bad_rollout_rolled_back_at"] in ("shadow", 5) and results["gate_false_rollback_rate"] <= 0.05
    assert results["data_v1_md5"] == results["restored_v1_md5"] == results["pulled_v1_md5"] != results["data_v2_md5"]
