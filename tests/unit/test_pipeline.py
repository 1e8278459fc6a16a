"""The pipeline's stages (lifecycle.pipeline.stages) and the engines that run them (lifecycle.pipeline.dvc, .flow):
plain functions on small data, a real `dvc repro` cycle in a real sandbox, a real Prefect flow."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from lifecycle import pipeline
from lifecycle.config import load_settings
from lifecycle.data import generate_transactions, write_transactions
from lifecycle.errors import ConfigError, SchemaError
from lifecycle.features import split_by_time
from lifecycle.pipeline.stages import (
    DEFAULT_PARAMS,
    FEATURES,
    METRICS,
    MODEL,
    SOURCE,
    STAGE_NAMES,
    STAGES,
    VALIDATION_REPORT,
    read_params,
    run_stage,
)
from lifecycle.training import train_fraud_model

ROOT = Path(__file__).resolve().parents[2]
# Small and quick: 4,000 rows, few boosting rounds.
SMALL = {**DEFAULT_PARAMS, "seed": 3, "validate": {"min_rows": 500, "max_fraud_rate": 0.1},
         "train": {**DEFAULT_PARAMS["train"], "max_iter": 40}}
QUALITY = ("pr_auc", "precision", "recall", "f1", "threshold")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return generate_transactions(rows=4_000, seed=3, users=400)


def _run_until(stage: str, folder, params, source) -> dict:
    reports = {}
    for name in STAGE_NAMES[:STAGE_NAMES.index(stage) + 1]:
        reports[name] = run_stage(name, folder, params, source)
    return reports


def test_every_stage_reads_only_the_source_or_what_an_earlier_stage_wrote():
    written = {SOURCE}
    for stage in STAGES:
        assert set(stage.deps) <= written, f"{stage.name} reads {set(stage.deps) - written} before anything wrote it"
        written |= {*stage.outs, *stage.records, *stage.metrics}
        assert all(path.is_file() for path in stage.code_files())


def test_stages_on_small_data_give_the_metrics_of_train_fraud_model(tmp_path, raw):
    source = write_transactions(raw, tmp_path / "raw.csv")
    reports = _run_until("evaluate", tmp_path / "run", SMALL, source)

    assert reports["ingest"]["rows"] == len(raw)
    assert json.loads((tmp_path / "run" / VALIDATION_REPORT).read_text())["rows"] == len(raw)
    table = pd.read_parquet(tmp_path / "run" / FEATURES)
    assert table["window"].value_counts().to_dict() == {"train": 3_000, "test": 1_000}
    assert reports["features"] == {"train_rows": 3_000, "test_rows": 1_000, "feature_columns": 17}

    train, test = split_by_time(raw, SMALL["features"]["test_fraction"])
    direct = train_fraud_model(train, test, "hgb", 3, 0.2, learning_rate=0.1, max_iter=40)
    written = json.loads((tmp_path / "run" / METRICS).read_text())
    assert {k: written[k] for k in QUALITY} == direct.metrics
    assert reports["train"]["threshold"] == direct.threshold
    assert written["test_frauds"] == int(test["is_fraud"].sum())


def test_the_same_inputs_give_the_same_model_bytes(tmp_path, raw):
    source = write_transactions(raw, tmp_path / "raw.csv")
    for folder in ("a", "b"):
        _run_until("train", tmp_path / folder, SMALL, source)
    assert (tmp_path / "a" / MODEL).read_bytes() == (tmp_path / "b" / MODEL).read_bytes()


def test_validation_stops_bad_data_and_names_the_parameter(tmp_path, raw):
    source = write_transactions(raw.head(300), tmp_path / "raw.csv")
    run_stage("ingest", tmp_path, SMALL, source)
    with pytest.raises(SchemaError, match=r"300 rows, fewer than validate.min_rows=500"):
        run_stage("validate", tmp_path, SMALL)
    genuine = write_transactions(raw.assign(is_fraud=0), tmp_path / "genuine.csv")
    run_stage("ingest", tmp_path, SMALL, genuine)
    with pytest.raises(SchemaError, match=r"fraud rate 0.0000 outside \(0, validate.max_fraud_rate=0.1\]"):
        run_stage("validate", tmp_path, SMALL)


def test_bad_parameters_and_a_champion_alias_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['min_row'\] under 'validate'"):
        run_stage("validate", tmp_path, {**SMALL, "validate": {"min_row": 5}})
    with pytest.raises(ConfigError, match=r"unknown pipeline stage 'deploy'"):
        run_stage("deploy", tmp_path, SMALL)
    with pytest.raises(ConfigError, match=r"register.alias='champion'.*use challenger"):
        run_stage("register", tmp_path, {**SMALL, "register": {"alias": "champion"}})
    with pytest.raises(ConfigError, match=r"no params.yaml in"):
        read_params(tmp_path)


def test_set_param_changes_one_value_and_refuses_a_typo(tmp_path):
    pipeline.write_params(tmp_path, SMALL)
    assert pipeline.set_param(tmp_path, "train.learning_rate", 0.05) == 0.1
    assert read_params(tmp_path)["train"] == {**SMALL["train"], "learning_rate": 0.05}
    with pytest.raises(ConfigError, match=r"no parameter 'train.learning_rat'"):
        pipeline.set_param(tmp_path, "train.learning_rat", 0.05)


def test_dvc_yaml_declares_each_stage_with_its_code_and_leaf_parameters():
    stages = pipeline.pipeline_definition(SMALL)["stages"]
    assert list(stages) == list(STAGE_NAMES)
    assert stages["train"]["cmd"] == "python -m lifecycle.pipeline train"  # the python on PATH: no absolute path
    assert stages["train"]["deps"] == [FEATURES]
    assert stages["train"]["params"] == [
        "seed", "train.kind", "train.validation_fraction", "train.learning_rate", "train.max_iter",
        {pipeline.CODE_PARAMS_FILE: ["modules.pipeline.stages", "modules.pipeline.steps", "modules.training",
                                     "modules.features",
                                     "packages.scikit_learn", "packages.numpy"]}]
    assert stages["evaluate"]["metrics"] == [{METRICS: {"cache": False}}]
    text = json.dumps(stages)
    assert str(ROOT) not in text and sys.executable not in text


def test_the_code_parameters_hold_every_stage_module_by_md5_and_its_packages_by_version(tmp_path):
    import hashlib

    import yaml

    from lifecycle.pipeline.provenance import code_params

    params = code_params()
    training = ROOT / "lifecycle" / "training.py"
    assert params["modules"]["training"] == hashlib.md5(training.read_bytes()).hexdigest()
    assert set(params["modules"]["tracking"]) == {"runs", "registry"}
    assert params["packages"]["scikit_learn"] == metadata.version("scikit-learn")
    path = pipeline.write_code_params(tmp_path)
    written, stamp = yaml.safe_load(path.read_text()), path.stat().st_mtime_ns
    assert written == params
    for stage in STAGES:  # every key a stage declares is in the file
        for key in pipeline.stage_code_params(stage):
            value = written
            for part in key.split("."):
                value = value[part]
            assert isinstance(value, str), key
    assert pipeline.write_code_params(tmp_path).stat().st_mtime_ns == stamp  # unchanged: not rewritten


def test_repro_output_is_parsed_into_ran_skipped_and_restored():
    output = ("'data/transactions.csv.dvc' didn't change, skipping\nStage 'ingest' didn't change, skipping\n"
              "Stage 'train' is cached - skipping run, checking out outputs\nRunning stage 'evaluate':\n"
              "> python -m lifecycle.pipeline evaluate\nUpdating lock file 'dvc.lock'\n")
    assert pipeline.parse_repro_output(output) == {"ran": ["evaluate"], "skipped": ["ingest"],
                                                        "restored": ["train"]}


def test_the_prefect_cache_key_follows_input_bytes_and_used_parameters_only(tmp_path, raw):
    source = write_transactions(raw, tmp_path / "raw.csv")
    key = pipeline.stage_fingerprint("validate", tmp_path, SMALL)
    run_stage("ingest", tmp_path, SMALL, source)
    ingested = pipeline.stage_fingerprint("validate", tmp_path, SMALL)
    assert ingested != key  # its input appeared
    assert pipeline.stage_fingerprint("validate", tmp_path, {**SMALL, "train": {"max_iter": 1}}) == ingested
    assert pipeline.stage_fingerprint("validate", tmp_path, {**SMALL, "validate": {"min_rows": 1}}) != ingested
    elsewhere = pipeline.stage_fingerprint("ingest", tmp_path / "other", SMALL, source)
    assert elsewhere != pipeline.stage_fingerprint("ingest", tmp_path, SMALL, source)  # outputs go elsewhere


def test_without_prefect_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "prefect", None)  # what Python does for a package that cannot be imported
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    assert not pipeline.prefect_installed()
    for needs_prefect in (pipeline.require_prefect, pipeline.configure_prefect):
        with pytest.raises(ConfigError, match=r"pip install -e '\.\[orchestration\]'"):
            needs_prefect()
    assert "PREFECT_HOME" not in os.environ  # nothing was configured for a Prefect that is not there


def test_no_server_is_started_when_prefect_api_url_names_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # a server of the learner's own
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    assert pipeline.start_prefect_server(load_settings(workspace=tmp_path / "workspace")) is None
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:9/api" and not (tmp_path / "prefect").exists()


@pytest.mark.slow
def test_dvc_repro_runs_everything_then_nothing_then_only_what_a_training_parameter_changes(tmp_path):
    from lifecycle.tracking import alias_version
    from lifecycle.versioning import init_sandbox, version_data

    settings = load_settings(workspace=tmp_path / "workspace")
    repo = init_sandbox(settings.workspace / "data-repo", settings.dvc_remote_url, echo=False)
    version_data(repo, generate_transactions(3_000, seed=3, users=300), "data-v1", "one data version")
    pipeline.reset_pipeline(repo, base="data-v1")
    pipeline.write_pipeline(repo, SMALL)

    first = pipeline.reproduce(repo, settings)
    assert first.ran == list(STAGE_NAMES)
    pipeline.commit_pipeline(repo, "first run")
    _check_the_run_records_the_data_version(repo, settings)
    _check_a_clone_reproduces(repo, settings, tmp_path)
    _check_a_change_to_the_kits_code_makes_its_stages_stale(repo)
    cached = pipeline.reproduce(repo, settings)
    assert (cached.ran, cached.skipped) == ([], list(STAGE_NAMES))
    pipeline.set_param(repo.path, "train.learning_rate", 0.05)
    changed = pipeline.reproduce(repo, settings)
    assert changed.ran == ["train", "evaluate", "register"]
    assert changed.skipped == ["ingest", "validate", "features"]

    assert re.search(r"train\.learning_rate\s+0\.1\s+0\.05", repo.dvc("params", "diff").stdout)
    assert "pr_auc" in repo.dvc("metrics", "diff").stdout
    assert json.loads((repo.path / "pipeline/registered.json").read_text())["version"] == "2"
    assert alias_version("challenger", settings) == "2"
    assert alias_version("champion", settings) is None  # the pipeline never promotes

    pipeline.set_param(repo.path, "train.learning_rate", 0.1)  # back: DVC's run-cache has those outputs
    back = pipeline.reproduce(repo, settings)
    assert (back.restored, back.ran) == (["train", "evaluate"], ["register"])  # a registration is not replayed

    pipeline.reset_pipeline(repo, base="data-v1")  # a second run of the lesson starts from the same state
    assert not (repo.path / "dvc.yaml").exists() and repo.git("status", "--short").stdout == ""


def _check_the_run_records_the_data_version(repo, settings):
    from lifecycle.tracking import mlflow_client
    from lifecycle.versioning import file_md5

    run_id = json.loads((repo.path / "pipeline/registered.json").read_text())["run_id"]
    tags = mlflow_client(settings).get_run(run_id).data.tags
    pointer = repo.path / "data/transactions.csv.dvc"
    assert (tags["data.source"], tags["data.tag"], tags["data.path"]) == ("dvc", "data-v1", "data/transactions.csv")
    assert tags["data.rev"] == repo.git("rev-list", "-n", "1", "data-v1").stdout
    assert tags["data.dvc_file_md5"] == file_md5(pointer) and tags["data.md5"] == file_md5(repo.data_file)


def _check_a_clone_reproduces(repo, settings, tmp_path):
    """A colleague clones the sandbox elsewhere, pulls, reproduces: everything is up to date."""
    from lifecycle.versioning import clone_sandbox, push_data

    for name in ("dvc.yaml", "dvc.lock"):  # nothing outside the repository: no venv, no kit, no workspace
        text = (repo.path / name).read_text()
        assert str(tmp_path) not in text and str(ROOT) not in text and sys.executable not in text, name
    push_data(repo)  # the pipeline's outputs too
    clone = clone_sandbox(repo)
    assert clone.path != repo.path and (clone.path / MODEL).read_bytes() == (repo.path / MODEL).read_bytes()
    again = pipeline.reproduce(clone, settings)
    assert (again.ran, again.restored, again.skipped) == ([], [], list(STAGE_NAMES)), again.output
    assert "Data and pipelines are up to date" in again.output
    assert clone.git("status", "--short").stdout == ""  # reproduce's refresh of lifecycle_code.yaml changed nothing


def _check_a_change_to_the_kits_code_makes_its_stages_stale(repo):
    """Edit training.py and its md5 in lifecycle_code.yaml changes: train and what reads its output are stale."""
    import yaml

    path = repo.path / pipeline.CODE_PARAMS_FILE
    original = path.read_text()
    code = yaml.safe_load(original)
    code["modules"]["training"] = "0" * 32
    path.write_text(yaml.safe_dump(code))
    changed = [{"changed deps": {pipeline.CODE_PARAMS_FILE: {"modules.training": "modified"}}}]
    # The stages that run training.py; `dvc repro` would rerun register too, as it reads their outputs.
    assert json.loads(repo.dvc("status", "--json").stdout) == {"train": changed, "evaluate": changed}
    path.write_text(original)


@pytest.mark.slow
def test_prefect_flow_retries_a_blip_caches_a_rerun_and_matches_the_plain_stages(tmp_path, raw, monkeypatch):
    for name, value in {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                        # Prefect logs "Stopping temporary server" at exit, after pytest has closed the stream
                        "PREFECT_LOGGING_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(name, value)  # what configure_prefect would set, undone after the test
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = load_settings(workspace=tmp_path / "workspace")
    server = pipeline.start_prefect_server(settings)  # as the lesson does: in the background, then waited for
    assert server is not None and os.environ["PREFECT_API_URL"] == server.api_url
    assert pipeline.start_prefect_server(settings) is server  # a second call (a cell run twice) reuses it
    try:
        source = write_transactions(raw, tmp_path / "raw.csv")
        server.wait_until_ready()
        assert server.ready_after > 0 and server.log_file == tmp_path / "prefect" / "server.log"
        _check_the_prefect_flow(tmp_path, settings, source)
    finally:
        server.stop()
    assert server.process.poll() is not None and "PREFECT_API_URL" not in os.environ


def _check_the_prefect_flow(tmp_path, settings, source):
    run = pipeline.run_prefect_flow(source, SMALL, settings, ingest_blips=1, refresh_cache=True,
                                         folder=tmp_path / "flow")
    assert (run.state, run.retries) == ("Completed", 1), run.message
    assert [task["stage"] for task in run.tasks] == list(STAGE_NAMES)
    assert "Retrying" in run.tasks[0]["history"] and run.tasks[0]["attempts"] == 2
    plain = _run_until("evaluate", tmp_path / "plain", SMALL, source)
    assert run.metrics == plain["evaluate"]
    assert (tmp_path / "flow" / MODEL).read_bytes() == (tmp_path / "plain" / MODEL).read_bytes()
    assert run.reports["register"]["alias"] == "challenger"

    again = pipeline.run_prefect_flow(source, SMALL, settings, ingest_blips=1, folder=tmp_path / "flow")
    assert again.state == "Completed" and {task["state"] for task in again.tasks} == {"Cached"}
    assert again.retries == 0 and again.metrics == run.metrics

    too_strict = {**SMALL, "validate": {"min_rows": 10_000, "max_fraud_rate": 0.1}}  # 4,000 rows fail it
    failed = pipeline.run_prefect_flow(source, too_strict, settings, ingest_blips=0, folder=tmp_path / "bad")
    assert failed.state == "Failed" and "fewer than validate.min_rows=10000" in failed.message
    validate = next(task for task in failed.tasks if task["stage"] == "validate")
    assert validate["attempts"] == 1  # bad data is not retried: only network-like errors are
