"""The course's review rules as checks (lifecycle.course.lint), each shown failing on a planted example."""

from __future__ import annotations

from lifecycle.course.lint import missing_plots, output_noise, typed_measurements


def notebook(*cells: dict) -> dict:
    return {"metadata": {"name": "planted.ipynb"}, "cells": list(cells)}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "source": text}


def code(source: str, *outputs: dict) -> dict:
    return {"cell_type": "code", "source": source, "outputs": list(outputs)}


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_a_typed_measurement_is_flagged_with_its_cell():
    planted = notebook(markdown("# Serving"), markdown("On this machine gRPC took about 350 µs a call, REST 2.5 ms."))
    found = typed_measurements(planted)
    assert [(f.cell, f.text) for f in found] == [(1, "about 350 µs"), (1, "2.5 ms")]


def test_each_unit_of_a_measurement_is_caught():
    for text in ("fits in 12 s", "1,450 req/s", "55,712 rows/s", "a 4 MB report", "7.5× faster", "recall 80%"):
        assert typed_measurements(notebook(markdown(text))), text


def test_facts_that_no_run_measures_pass():
    facts = ("Route 5% → 25% → 50% → 100% and watch the p99.", "MLflow 3.17.2 deprecated stages in 2.9.",
             "The tutorial says *gRPC is 2–10× faster than REST*.", "a 95% interval", "`timeout=10 s` in code",
             "```python\nmodel.fit(X)  # 520 s\n```", "5 stages, 3 seeds, 20,000 rows")
    for text in facts:
        assert typed_measurements(notebook(markdown(text))) == [], text


def test_code_cells_may_print_measurements():
    assert typed_measurements(notebook(code('print(f"{seconds:.1f} s")', stream("12.3 s\n")))) == []


def test_noise_in_outputs_is_flagged_by_kind():
    planted = notebook(
        code("a", stream("2026/11/30 10:01:02 WARNING mlflow.models: cloudpickle\n")),
        code("b", stream("\x1b[32m12:00:01 INFO\x1b[0m | Flow run 'x'\n")),
        code("c", stream("+---------------------+\n| Star us on GitHub! |\n")),
        code("d", stream("server on http://127.0.0.1:41234 (pid 12345)\n")),
        code("e", stream("log: /work/main/workspace/logs/serve.log\n")),
        code("f", stream("Downloading artifacts: 100%|██████████| 5/5\n")),
        code("g", stream("UserWarning: X does not have valid feature names\n")),
        code("h", stream("Successfully registered model 'fraud-detector'.\n"
                         "Created version '2' of model 'fraud-detector'.\n")),
    )
    rules = {(f.cell, f.rule) for f in output_noise(planted)}
    assert {(0, "a library log line"), (1, "an ANSI escape"), (2, "a banner"), (3, "a port"),
            (3, "a process id"), (4, "an absolute path"), (5, "a progress bar"), (6, "a library warning"),
            (7, "MLflow's registry chatter")} <= rules


def test_clean_outputs_pass():
    clean = notebook(code("x", stream("PR-AUC 0.812 on the test window; the log holds 400 rows\n")),
                     code("y", {"output_type": "execute_result", "data": {"text/plain": "{'status': 200}"}}))
    assert output_noise(clean) == []


def test_a_plotting_cell_without_an_image_is_flagged():
    drawn = {"output_type": "display_data", "data": {"image/png": "iVBOR...", "text/plain": "<Figure>"}}
    planted = notebook(code("fig, ax = plt.subplots()\nax.plot([1, 2])"),
                       code("fig, ax = plt.subplots()", drawn), code("print(1)"))
    assert [f.cell for f in missing_plots(planted)] == [0]


def test_a_measured_share_next_to_a_rollout_step_number_is_still_caught():
    assert [f.text for f in typed_measurements(notebook(markdown("right about 98.5% of the time")))] == ["about 98.5%"]
    assert [f.text for f in typed_measurements(notebook(markdown("a 12.5 % drop")))] == ["12.5 %"]


def test_more_kinds_of_noise_are_caught():
    planted = notebook(
        code("a", stream("tracking store: sqlite:////work/main/workspace/mlflow.db\n")),
        code("b", stream("report: file:///home/learner/report.html\n")),
        code("c", stream("20:05:01.203 | INFO    | Flow run 'smart-marmoset' - Beginning flow run\n")),
        code("d", stream("INFO:uvicorn.error:Started server process\n")),
        code("e", stream("[IPKernelApp] WARNING | Kernel is running over TCP\n")),
        code("f", stream("View at http://127.0.0.1:4200/runs/flow-run/d0a114dc-d608-4f04-b2be-52119c4ac3ff\n")),
        code("g", stream(r"C:\Users\learner\lab\workspace" + "\n")),
    )
    rules = {(f.cell, f.rule) for f in output_noise(planted)}
    assert {(0, "an absolute path"), (1, "an absolute path"), (2, "a library log line"), (3, "a library log line"),
            (4, "a library log line"), (5, "an id that changes every run"), (6, "an absolute path")} <= rules


def test_fixed_ports_a_learner_types_pass_and_ports_from_the_os_do_not():
    fixed = notebook(code("a", stream("then open http://127.0.0.1:5000 (mlflow ui) or localhost:8000\n")))
    assert output_noise(fixed) == []
    assert [f.text for f in output_noise(notebook(code("b", stream("on http://127.0.0.1:41234\n"))))] == [
        "127.0.0.1:41234"]


def test_a_warning_shown_on_purpose_passes_only_in_a_cell_tagged_for_it():
    shown = stream("FutureWarning: transition_model_version_stage is deprecated since 2.9.0\n")
    tagged = {**code("print(caught)", shown), "metadata": {"tags": ["shows-library-warning"]}}
    assert output_noise(notebook(tagged)) == []
    assert [f.rule for f in output_noise(notebook(code("print(caught)", shown)))] == ["a library warning"]
    stale = {**code("print(1)", stream("1\n")), "metadata": {"tags": ["shows-library-warning"]}}
    assert [f.rule for f in output_noise(notebook(stale))] == [
        "a 'shows-library-warning' tag on a cell that shows none"]
    noisy = {**code("x", stream("2026/11/30 10:01:02 WARNING mlflow.sklearn: cloudpickle\n")),
             "metadata": {"tags": ["shows-library-warning"]}}
    assert [f.rule for f in output_noise(notebook(noisy))] == ["a library log line"]  # the tag exempts nothing else
