"""lifecycle.tracking against a real MLflow sqlite store in each test's own workspace (see conftest)."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from lifecycle.config import load_settings
from lifecycle.data import generate_transactions
from lifecycle.errors import ConfigError
from lifecycle.features import build_features, split_by_time
from lifecycle.tracking import (
    CHALLENGER,
    CHAMPION,
    HISTORY_ARTIFACT,
    alias_version,
    apply_promotion,
    compare_runs,
    compare_with_champion,
    ensure_champion,
    export_served_model,
    load_exported_model,
    load_served_model,
    log_fraud_model,
    mlflow_client,
    promote,
    register_run,
    set_alias,
    should_promote,
)
from lifecycle.tracking.promotion import PROMOTION_ALPHA
from lifecycle.tracking.server import start_mlflow_server
from lifecycle.training import pr_auc_gain, predict_scores, train_fraud_model


@pytest.fixture(scope="module")
def windows():
    """Train, test and holdout windows of a small table, and the history before the holdout."""
    development, holdout = split_by_time(generate_transactions(4_000, seed=7), test_fraction=0.25)
    train, test = split_by_time(development, test_fraction=0.3)
    return {"train": train, "test": test, "holdout": holdout, "development": development}


@pytest.fixture(scope="module")
def good(windows):
    return train_fraud_model(windows["train"], windows["test"], "logreg", seed=7)


@pytest.fixture(scope="module")
def poor(windows):
    """A one-split stump: far worse at ranking fraud than the logistic regression."""
    return train_fraud_model(windows["train"], windows["test"], "random_forest", seed=7, n_estimators=1, max_depth=1)



@pytest.fixture
def settings(isolated_workspace, empty_store):
    """Settings whose store is a fresh sqlite database in this test's own workspace."""
    settings = load_settings().ensure_dirs()
    assert settings.mlflow_tracking_uri == f"sqlite:///{settings.workspace / 'mlflow.db'}"
    assert str(isolated_workspace) in settings.mlflow_tracking_uri, "tests must not touch the real store"
    shutil.copyfile(empty_store, settings.workspace / "mlflow.db")
    return settings


def check_and_apply(version, windows, settings, min_gain=0.0):
    check = compare_with_champion(version, windows["holdout"], windows["development"], settings, min_gain=min_gain)
    return check, apply_promotion(check, settings)


def scored_rows(rows: int, strength: float, seed: int, strength_b: float | None = None):
    """Labels (1.5% fraud) and two models' scores: fraud shifted up by ``strength`` (model a) and
    ``strength_b`` (model b, default the same), each with its own noise."""
    rng = np.random.default_rng(seed)
    labels = rng.random(rows) < 0.015
    strength_b = strength if strength_b is None else strength_b
    return labels, labels * strength + rng.normal(size=rows), labels * strength_b + rng.normal(size=rows)


def test_promotion_rule_promotes_without_a_champion_and_on_clear_evidence_only():
    assert should_promote(None) is True  # no champion yet: nothing to hold on to
    labels, strong, weak = scored_rows(4_000, 3.0, seed=1, strength_b=1.0)
    clear = pr_auc_gain(labels, strong, weak)
    assert clear.gain > 0.2 and clear.interval()[0] > 0 and should_promote(clear) is True
    assert should_promote(clear, min_gain=clear.gain + 0.1) is False, "a margin beyond the gain holds"
    tie = pr_auc_gain(labels, strong, strong)
    assert tie.gain == 0 and tie.p_value() == 1.0 and should_promote(tie) is False, "a tie holds"
    worse = pr_auc_gain(labels, weak, strong)
    assert should_promote(worse) is False


def test_a_gain_within_the_noise_holds_where_the_old_rule_promoted():
    labels, first, second = scored_rows(3_000, 1.5, seed=4)  # equally good models, different noise
    gain = pr_auc_gain(labels, first, second) if pr_auc_gain(labels, first, second).gain > 0 else \
        pr_auc_gain(labels, second, first)
    assert 0 < gain.gain < gain.interval()[1] and gain.interval()[0] < 0
    assert should_promote(gain) is False, "higher on the holdout, but within its noise: hold"


def test_the_rule_promotes_an_equal_challenger_at_about_its_stated_error_rate():
    """Two equally good models on the same rows: the rule's stated error rate is how often it promotes
    anyway. The old rule (promote when not lower) promoted half of them."""
    promoted = point_estimate = 0
    trials = 120
    for trial in range(trials):
        labels, challenger, champion = scored_rows(2_000, 1.5, seed=100 + trial)
        gain = pr_auc_gain(labels, challenger, champion, rounds=400, seed=trial)
        promoted += should_promote(gain)
        point_estimate += gain.gain >= 0
    assert promoted / trials <= PROMOTION_ALPHA + 0.06, f"promoted {promoted} of {trials} equal challengers"
    assert point_estimate / trials > 0.3, "the point-estimate rule promotes far more often"
    strong = sum(should_promote(pr_auc_gain(*scored_rows(2_000, 3.0, seed=300 + trial, strength_b=1.5),
                                            rounds=400, seed=trial)) for trial in range(20))
    assert strong >= 18, f"a clearly better challenger was promoted only {strong} of 20 times"


def test_first_challenger_becomes_champion(windows, good, settings):
    _, version = log_fraud_model(good, windows["train"], "logreg", settings)
    assert alias_version(CHAMPION, settings) is None
    check, champion = check_and_apply(version, windows, settings)
    assert (check.promote, check.champion_version, check.reason) == (True, None, "no champion yet")
    assert champion == version == "1"
    tags = mlflow_client(settings).get_model_version(settings.registered_model, version).tags
    assert tags["validation_status"] == "approved" and tags["compared_with"] == "none"


def test_worse_challenger_is_rejected_and_champion_stays(windows, good, poor, settings):
    _, champion = log_fraud_model(good, windows["train"], "logreg", settings, alias=CHAMPION)
    _, challenger = log_fraud_model(poor, windows["train"], "stump", settings, alias=CHALLENGER)
    check, after = check_and_apply(challenger, windows, settings)
    assert check.challenger_metrics["pr_auc"] < check.champion_metrics["pr_auc"]
    assert not check.promote and after == champion and check.reason.startswith("hold: ")
    assert alias_version(CHALLENGER, settings) == challenger
    tags = mlflow_client(settings).get_model_version(settings.registered_model, challenger).tags
    assert tags["validation_status"] == "held" and tags["compared_with"] == champion
    assert float(tags["holdout_gain"]) == pytest.approx(check.gain.gain) and check.gain.gain < 0
    assert tags["promotion_rule"] == f"paired bootstrap, alpha {PROMOTION_ALPHA}, min_gain 0.0"
    assert list(check.table().index) == [f"challenger (v{challenger})", f"champion (v{champion})"]


def test_better_challenger_replaces_champion(windows, good, poor, settings):
    _, old = log_fraud_model(poor, windows["train"], "stump", settings, alias=CHAMPION)
    _, new = log_fraud_model(good, windows["train"], "logreg", settings)
    check, after = check_and_apply(new, windows, settings)
    assert check.promote and after == new != old and check.reason.startswith("promote: ")
    assert check.gain.interval()[0] > 0 and check.gain.p_value() < PROMOTION_ALPHA
    assert promote(old, CHAMPION, settings) == new, "promote returns the version the alias left (rollback)"


def test_the_same_model_again_ties_and_holds(windows, good, settings):
    _, first = log_fraud_model(good, windows["train"], "logreg", settings, alias=CHAMPION)
    _, second = log_fraud_model(good, windows["train"], "logreg-again", settings)
    check, after = check_and_apply(second, windows, settings)
    assert check.challenger_metrics["pr_auc"] == check.champion_metrics["pr_auc"] and check.gain.gain == 0
    assert not check.promote and after == first
    assert "the evidence is too thin, the champion stays" in check.reason


def test_champion_loads_with_threshold_and_history(windows, good, settings):
    run_id, version = log_fraud_model(good, windows["train"], "logreg", settings, alias=CHAMPION)
    served = load_served_model(settings=settings)
    assert (served.name, served.version, served.uri) == (settings.registered_model, version,
                                                         f"models:/{settings.registered_model}@champion")
    assert served.threshold == good.threshold
    assert list(served.history["transaction_id"]) == list(windows["train"]["transaction_id"])
    features = build_features(windows["test"], history=served.history)
    np.testing.assert_allclose(predict_scores(served.model, features), predict_scores(good.model, features))
    by_number = load_served_model(f"models:/{settings.registered_model}/{version}", settings)
    assert by_number.version == version and by_number.threshold == good.threshold

    run = mlflow_client(settings).get_run(run_id)
    assert {"kind", "threshold", "train_rows", "history_md5", "C"} <= set(run.data.params)
    assert {"pr_auc", "precision", "recall", "f1", "fit_seconds"} <= set(run.data.metrics)
    assert run.data.metrics["pr_auc"] == pytest.approx(good.metrics["pr_auc"])
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert (artifacts / HISTORY_ARTIFACT).is_file()
    assert artifacts.is_relative_to(settings.workspace), "artifacts belong in the workspace, not ./mlruns"


def test_register_run_and_compare_runs(windows, good, poor, settings):
    good_run, _ = log_fraud_model(good, windows["train"], "logreg", settings, register=False, tags={"session": "a"})
    log_fraud_model(poor, windows["train"], "stump", settings, register=False, tags={"session": "b"})
    runs = compare_runs(settings)
    assert list(runs["run"]) == ["logreg", "stump"], "best test PR-AUC first"
    assert list(compare_runs(settings, "tags.session = 'b'")["run"]) == ["stump"]
    version = register_run(good_run, settings)
    tags = mlflow_client(settings).get_model_version(settings.registered_model, version).tags
    assert float(tags["threshold"]) == good.threshold and tags["model_kind"] == "logreg"


def test_bad_requests_name_the_fix(windows, good, settings):
    with pytest.raises(ConfigError, match="ensure_champion"):
        load_served_model(settings=settings)
    with pytest.raises(ConfigError, match="expected models:/"):
        load_served_model("runs:/abc/model", settings)
    with pytest.raises(ConfigError, match="register=True"):
        log_fraud_model(good, windows["train"], "logreg", settings, register=False, alias=CHAMPION)
    _, version = log_fraud_model(good, windows["train"], "logreg", settings)
    set_alias(version, CHALLENGER, settings)
    assert alias_version(CHAMPION, settings) is None and alias_version(CHALLENGER, settings) == version


def test_a_run_records_the_data_version_its_history_came_from(windows, good, settings):
    from lifecycle.versioning import DataLineage

    lineage = DataLineage("dvc", "a" * 32, tag="data-v1", rev="b" * 40, dvc_file_md5="c" * 32, remote="/shared/remote")
    with_lineage, _ = log_fraud_model(good, windows["train"], "logreg", settings, register=False, lineage=lineage,
                                      tags={"session": "s1"})
    tags = mlflow_client(settings).get_run(with_lineage).data.tags
    assert {k: v for k, v in tags.items() if k.startswith("data.")} == {
        "data.source": "dvc", "data.md5": "a" * 32, "data.tag": "data-v1", "data.rev": "b" * 40,
        "data.dvc_file_md5": "c" * 32, "data.path": "data/transactions.csv", "data.remote": "/shared/remote"}
    assert tags["session"] == "s1" and tags["model_kind"] == "logreg"
    without, _ = log_fraud_model(good, windows["train"], "logreg", settings, register=False)  # altered data: none
    assert not [k for k in mlflow_client(settings).get_run(without).data.tags if k.startswith("data.")]


@pytest.mark.slow
def test_ensure_champion_trains_only_when_there_is_none(settings):
    from lifecycle.versioning import ensure_sandbox

    repo = ensure_sandbox(settings, rows=3_000, seed=3)  # lesson 01 has run: the champion learns from data-v1
    version = ensure_champion(settings, seed=3, rows=3_000)
    assert version == alias_version(CHAMPION, settings) == "1"
    run_id = mlflow_client(settings).get_model_version(settings.registered_model, version).run_id
    tags = mlflow_client(settings).get_run(run_id).data.tags
    assert (tags["data.source"], tags["data.tag"]) == ("dvc", "data-v1")
    assert tags["data.rev"] == repo.git("rev-list", "-n", "1", "data-v1").stdout
    assert ensure_champion(settings, seed=3, rows=3_000) == "1"
    assert len(mlflow_client(settings).search_model_versions(f"name = '{settings.registered_model}'")) == 1
    assert load_served_model(settings=settings).model.__class__.__name__ == "HistGradientBoostingClassifier"


def test_a_local_export_serves_the_version_as_the_registry_does(windows, good, settings):
    run_id, version = log_fraud_model(good, windows["train"], "logreg", settings, alias=CHAMPION)
    uri = f"models:/{settings.registered_model}@champion"
    folder = export_served_model(settings=settings)
    assert folder == settings.workspace / "served-models" / f"{settings.registered_model}-v{version}-{run_id}"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["name"], manifest["version"], manifest["run_id"]) == (settings.registered_model, version, run_id)
    assert manifest["serialization_format"] == "cloudpickle" and "scikit-learn" in manifest["libraries"]
    written = (folder / "manifest.json").stat().st_mtime_ns
    assert export_served_model(f"models:/{settings.registered_model}/{version}", settings) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == written, "a valid export is reused, not rewritten"
    assert not [path for path in folder.parent.iterdir() if path != folder], "no staging folder is left behind"

    served, registry = load_exported_model(folder, uri), load_served_model(uri, settings)
    assert (served.name, served.version, served.uri, served.threshold) == \
        (registry.name, registry.version, registry.uri, registry.threshold) == \
        (settings.registered_model, version, uri, good.threshold)
    assert load_exported_model(folder, f"models:/{settings.registered_model}/{version}").uri.endswith(f"/{version}")
    assert served.history.equals(registry.history)
    features = build_features(windows["test"], history=served.history)
    np.testing.assert_array_equal(predict_scores(served.model, features), predict_scores(registry.model, features))


def test_a_broken_missing_or_stale_export_is_refused_naming_the_folder_and_the_fix(windows, good, poor, settings,
                                                                                     tmp_path):
    run_id, version = log_fraud_model(good, windows["train"], "logreg", settings, alias=CHAMPION)
    uri = f"models:/{settings.registered_model}@champion"
    folder = export_served_model(uri, settings)
    fix = "delete the folder and start the server again"
    model_file = folder / json.loads((folder / "manifest.json").read_text())["model_file"]
    model_file.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=rf"model export {re.escape(str(folder))} cannot be served: its model or "
                                          rf"history file is missing or differs from its manifest; {fix}"):
        load_exported_model(folder, uri)
    assert export_served_model(uri, settings) == folder, "the registry still has the version: written again"
    assert load_exported_model(folder, uri).threshold == good.threshold
    with pytest.raises(ConfigError, match=rf"holds models:/{settings.registered_model}/{version}, not "
                                          rf"models:/{settings.registered_model}/9: serve it as"):
        load_exported_model(folder, f"models:/{settings.registered_model}/9")
    (folder / "manifest.json").write_text("{")
    with pytest.raises(ConfigError, match=r"its manifest.json is missing or unreadable \(JSONDecodeError"):
        load_exported_model(folder, uri)
    with pytest.raises(ConfigError, match=rf"no model export at {re.escape(str(tmp_path / 'nowhere'))}: export one"):
        load_exported_model(tmp_path / "nowhere", uri)

    # The store is rebuilt: the same name and version now come from another run. Its export is another
    # folder, and the old one, put in its place, is refused as stale.
    export_served_model(uri, settings)
    mlflow_client(settings).delete_registered_model(settings.registered_model)
    new_run, new_version = log_fraud_model(poor, windows["train"], "stump", settings, alias=CHAMPION)
    assert new_version == version and new_run != run_id
    fresh = export_served_model(uri, settings)
    assert fresh != folder and fresh.name.endswith(new_run)
    features = build_features(windows["test"], history=windows["train"])
    np.testing.assert_array_equal(predict_scores(load_exported_model(fresh, uri).model, features),
                                  predict_scores(poor.model, features))
    shutil.rmtree(fresh)
    shutil.copytree(folder, fresh)
    with pytest.raises(ConfigError, match=rf"it holds version {version} of run {run_id}, not what its name says "
                                          rf"\(stale\); {fix}"):
        load_exported_model(fresh, uri)
    assert json.loads((export_served_model(uri, settings) / "manifest.json").read_text())["run_id"] == new_run


@pytest.mark.slow
def test_server_logs_and_serves_over_http_then_stops_completely(windows, good, settings, capfd):
    import dataclasses

    server = start_mlflow_server(settings)
    try:
        assert server.running
        remote = dataclasses.replace(settings, mlflow_tracking_uri=server.url)
        capfd.readouterr()
        _, version = log_fraud_model(good, windows["train"], "over-http", remote, alias=CHAMPION)
        served = load_served_model(settings=remote)
        printed = capfd.readouterr()  # no run links with the server's port, no progress bars of the download
        assert "View run" not in printed.out and "Downloading artifacts" not in printed.err
        assert served.version == version and served.threshold == good.threshold
        exported = load_exported_model(export_served_model(settings=remote), served.uri)  # artifacts over HTTP
        assert (exported.version, exported.threshold, len(exported.history)) == (version, good.threshold,
                                                                                  len(served.history))
        assert (settings.workspace / "mlflow-server-artifacts").is_dir()
        assert alias_version(CHAMPION, settings) is None, "the server has its own store"
    finally:
        server.stop()
    assert not server.running and server.process.returncode is not None
    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_the_mlflow_ui_command_names_the_store_relative_to_the_kit_folder():
    from lifecycle.tracking.server import mlflow_ui_command

    settings = load_settings()
    command = mlflow_ui_command(settings, port=5001)
    assert str(settings.root.resolve()) not in command, command  # the same text on every machine
    uri = command.split("--backend-store-uri ")[1].split()[0]
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):  # run from the kit's folder, it opens the same file
        expected = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).resolve()
        path = uri.removeprefix("sqlite:///").replace("$LIFECYCLE_WORKSPACE", str(settings.workspace))
        assert (settings.root / path).resolve() == expected
    assert command.endswith("--host 127.0.0.1 --port 5001")
    elsewhere = mlflow_ui_command(load_settings(workspace="/srv/course-workspace"))  # e.g. a class's runner
    assert "sqlite:///$LIFECYCLE_WORKSPACE/mlflow.db" in elsewhere and "/srv/" not in elsewhere
