"""Quiz banks, widgets and progress: banks load and teach the tutorial's answers; the widgets are
driven directly (set a value, click Check, read the feedback), no browser needed."""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

import pytest
import yaml

from lifecycle.course.progress import ProgressStore, progress_command, progress_report
from lifecycle.course.quiz import QuizWidget, build_quiz, list_lessons, load_bank, quiz_text, show_quiz
from lifecycle.errors import ConfigError, SchemaError

LESSONS = ("01_data_versioning", "02_feature_engineering", "03_experiment_tracking", "04_orchestration",
           "05_serving", "06_canary_release", "07_monitoring")

# The tutorial's three questions: lesson, id, exact question, words of the one correct option.
TUTORIAL = [
    ("02_feature_engineering", "most-predictive-features",
     "Which feature engineering technique typically provides the MOST predictive power in tabular ML problems?",
     "aggregation and ratio features"),
    ("06_canary_release", "canary-purpose",
     "What is the PRIMARY advantage of canary deployments for ML models?",
     "small share of users first"),
    ("07_monitoring", "concept-drift",
     "A fraud detection model's precision drops from 95% to 78% over three months, but the input feature "
     "distributions haven't changed. What type of drift is this?",
     "Concept drift"),
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIFECYCLE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("LIFECYCLE_LEARNER", "ana")
    return tmp_path / "ws"


def good_bank() -> dict:
    return {"lesson": "99_test", "questions": [
        {"id": "q1", "question": "Pick b.", "options": [
            {"text": "a", "explanation": "a is wrong because of x."},
            {"text": "b", "explanation": "b is right because of y.", "correct": True}]},
        {"id": "q2", "question": "Pick a and c.", "options": [
            {"text": "a", "explanation": "a is right.", "correct": True},
            {"text": "b", "explanation": "b is wrong."},
            {"text": "c", "explanation": "c is right.", "correct": True}]},
    ]}


def write_bank(folder: Path, bank: dict, name: str = "99_test") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(bank, sort_keys=False))
    return path


def test_every_bank_loads_and_each_lesson_has_at_least_three_questions():
    lessons = list_lessons()
    assert set(LESSONS) <= set(lessons)
    counts = {lesson: len(load_bank(lesson)) for lesson in lessons}
    assert all(counts[lesson] >= 3 for lesson in LESSONS), counts
    assert sum(counts[lesson] for lesson in LESSONS) >= 21


@pytest.mark.parametrize(("lesson", "qid", "text", "answer"), TUTORIAL, ids=[t[1] for t in TUTORIAL])
def test_tutorial_questions_are_in_their_lessons_with_the_right_answer(lesson, qid, text, answer):
    question = {q.id: q for q in load_bank(lesson)}[qid]
    assert question.question == text
    assert len(question.correct) == 1
    right = question.options[question.correct[0]]
    assert answer in right.text
    assert len(right.explanation) > 100, "the answer must be taught, not just stated"


def test_a_good_bank_derives_multiple_choice_from_the_number_of_correct_options(tmp_path):
    single, multiple = load_bank(write_bank(tmp_path, good_bank()))
    assert (single.multiple, single.correct, single.lesson) == (False, (1,), "99_test")
    assert (multiple.multiple, multiple.correct) == (True, (0, 2))
    assert multiple.grade([2, 0]) and not multiple.grade([0]) and not multiple.grade([0, 1, 2])


def _drop_explanation(bank):
    del bank["questions"][0]["options"][1]["explanation"]


def _no_correct(bank):
    del bank["questions"][1]["options"][0]["correct"]
    del bank["questions"][1]["options"][2]["correct"]


def _typo(bank):
    bank["questions"][0]["options"][0]["explaination"] = bank["questions"][0]["options"][0].pop("explanation")


def _correct_as_text(bank):
    bank["questions"][1]["options"][1]["correct"] = "yes"


def _duplicate_id(bank):
    bank["questions"][1]["id"] = "q1"


def _number_as_text(bank):
    bank["questions"][1]["options"][1]["text"] = 42


def _one_option(bank):
    bank["questions"][0]["options"] = bank["questions"][0]["options"][:1]


@pytest.mark.parametrize(("break_bank", "qid", "field"), [
    (_drop_explanation, "q1", "options[1].explanation"),
    (_no_correct, "q2", "options"),
    (_typo, "q1", "options[0].explaination"),
    (_correct_as_text, "q2", "options[1].correct"),
    (_duplicate_id, "q1", "id"),
    (_number_as_text, "q2", "options[1].text"),
    (_one_option, "q1", "options"),
])
def test_a_malformed_bank_fails_naming_file_question_and_field(tmp_path, break_bank, qid, field):
    bank = good_bank()
    break_bank(bank)
    path = write_bank(tmp_path, bank)
    with pytest.raises(SchemaError) as error:
        load_bank(path)
    message = str(error.value)
    assert str(path) in message
    assert f"question {qid!r}" in message
    assert f"field '{field}'" in message


def test_a_bank_must_name_its_lesson_and_questions_need_ids(tmp_path):
    bank = good_bank()
    bank["lesson"] = "06_canary"
    with pytest.raises(SchemaError, match=r"field 'lesson'.*'99_test'"):
        load_bank(write_bank(tmp_path, bank))
    bank = good_bank()
    del bank["questions"][1]["id"]
    with pytest.raises(SchemaError, match=r"question #2 \(no id\), field 'id'"):
        load_bank(write_bank(tmp_path, bank))
    (tmp_path / "broken.yaml").write_text("lesson: broken\nquestions: [\n")
    with pytest.raises(SchemaError, match="broken.yaml: not valid YAML"):
        load_bank(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="no question bank for '08_nothing'"):
        load_bank("08_nothing")


def _classes(widget) -> list[str]:
    """The CSS classes a browser gives the widget: what its synced state (public ``get_state()``) says."""
    return list(widget.get_state()["_dom_classes"])


def test_widget_parts_carry_the_css_classes():
    single, multiple = (QuizWidget(q) for q in load_bank("07_monitoring")[:5:4])
    assert "lifecycle-quiz" in _classes(single.box)
    assert "lifecycle-quiz-options" in _classes(single.options)
    assert "lifecycle-quiz-check" in _classes(single.check)
    assert "lifecycle-quiz-feedback" in _classes(single.feedback)
    assert type(single.choices).__name__ == "RadioButtons" and single.choices.value is None
    assert [type(box).__name__ for box in multiple.choices] == ["Checkbox"] * 4
    assert "lifecycle-quiz-options" in _classes(multiple.options)


def test_wrong_then_right_shows_both_explanations_and_progress_keeps_first_and_latest(workspace):
    quiz = build_quiz("06_canary_release")
    widget = quiz.questions[0]
    question = widget.question
    assert question.id == "canary-purpose"
    wrong = next(i for i, o in enumerate(question.options) if not o.correct)
    right = question.correct[0]

    widget.choices.value = wrong
    widget.check.click()
    assert "Not quite" in widget.feedback.value
    assert escape(question.options[wrong].explanation) in widget.feedback.value
    assert "lifecycle-quiz-wrong" in _classes(widget.feedback)

    widget.choices.value = right
    widget.check.click()
    assert "Correct" in widget.feedback.value
    assert escape(question.options[right].explanation) in widget.feedback.value
    assert escape(question.options[wrong].explanation) not in widget.feedback.value
    assert _classes(widget.feedback) == ["lifecycle-quiz-feedback", "lifecycle-quiz-correct"]

    saved = json.loads((workspace / "progress" / "ana.json").read_text())
    entry = saved["lessons"]["06_canary_release"]["canary-purpose"]
    assert entry["first"]["chosen"] == [wrong] and entry["first"]["correct"] is False
    assert entry["latest"]["chosen"] == [right] and entry["latest"]["correct"] is True
    assert entry["attempts"] == 2
    assert list((workspace / "progress").iterdir()) == [workspace / "progress" / "ana.json"]

    rows = {row["lesson"]: row for row in progress_report()}
    assert rows["06_canary_release"] == {"lesson": "06_canary_release", "questions": 4, "answered": 1,
                                         "first_try_correct": 0, "latest_correct": 1}
    assert rows["07_monitoring"]["answered"] == 0


def test_multi_answer_needs_exactly_the_correct_set(workspace, tmp_path):
    answers = []
    widget = QuizWidget(load_bank(write_bank(tmp_path, good_bank()))[1], on_answer=lambda *a: answers.append(a))
    widget.choices[0].value = True
    widget.check.click()
    assert "Not quite" in widget.feedback.value and "1 right option(s) not chosen yet" in widget.feedback.value
    assert "a is right." in widget.feedback.value
    widget.choices[2].value = True
    widget.check.click()
    assert "Correct" in widget.feedback.value and "c is right." in widget.feedback.value
    assert [(chosen, correct) for _, chosen, correct in answers] == [([0], False), ([0, 2], True)]


def test_check_without_a_choice_asks_for_one_and_records_nothing(workspace):
    widget = build_quiz("05_serving").questions[0]
    widget.check.click()
    assert "Choose an option first" in widget.feedback.value
    assert not (workspace / "progress").exists()


def test_progress_command_prints_the_score_per_lesson(workspace, capsys):
    store = ProgressStore()
    questions = load_bank("07_monitoring")
    store.record_answer(questions[0], [0], True)
    store.record_answer(questions[1], [1], False)
    store.record_answer(questions[1], [0], True)
    assert progress_command(argparse.Namespace(learner=None, json=False)) == 0
    table = capsys.readouterr().out
    line = next(row for row in table.splitlines() if row.startswith("07_monitoring"))
    assert line.split() == ["07_monitoring", "2/8", "1/8", "2/8"]
    assert "quiz progress of ana" in table
    assert progress_command(argparse.Namespace(learner="bo", json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["learner"] == "bo" and all(row["answered"] == 0 for row in report["lessons"])


def test_learner_names_are_checked(workspace, monkeypatch):
    with pytest.raises(ConfigError, match="cannot name a progress file"):
        ProgressStore("../etc/passwd")
    monkeypatch.setenv("LIFECYCLE_LEARNER", "two words")
    with pytest.raises(ConfigError, match=r"\$LIFECYCLE_LEARNER 'two words'"):
        ProgressStore()
    monkeypatch.delenv("LIFECYCLE_LEARNER")
    assert ProgressStore().path.parent == workspace / "progress"


def test_a_corrupt_progress_file_is_kept_and_the_learner_told(workspace):
    path = workspace / "progress" / "ana.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    widget = build_quiz("06_canary_release").questions[0]
    widget.choices.value = widget.question.correct[0]
    widget.check.click()
    assert "Correct" in widget.feedback.value and "not saved" in widget.feedback.value
    assert path.read_text() == "{not json"
    with pytest.raises(SchemaError, match="ana.json is not valid JSON"):
        progress_report()


def test_text_version_is_readable_and_reveal_adds_answers_and_explanations():
    questions = load_bank("07_monitoring")
    plain, key = quiz_text("07_monitoring", questions), quiz_text("07_monitoring", questions, reveal=True)
    assert plain == quiz_text("07_monitoring", load_bank("07_monitoring"))  # deterministic
    assert "1. A fraud detection model's precision drops" in plain and "   a) Concept drift" in plain
    assert "Answer" not in plain and "P(fraud | features)" not in plain
    assert "   Answer: a\n" in key and "   Answer: a, b\n" in key
    assert all(o.explanation.split()[0] in key for q in questions for o in q.options)


def test_show_quiz_prints_text_outside_a_notebook_and_the_key_only_when_asked(workspace, capsys):
    show_quiz("07_monitoring", reveal="false")  # as papermill passes `-p reveal_answers false`
    shown = capsys.readouterr().out
    assert shown.startswith("Quiz: 07_monitoring (8 questions)") and "Answer" not in shown
    show_quiz("07_monitoring", reveal=True)
    assert "Answer key: 07_monitoring" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="reveal must be true or false, got 'maybe'"):
        show_quiz("07_monitoring", reveal="maybe")


def test_display_bundle_has_the_widget_view_and_plain_text(workspace):
    quiz = build_quiz("02_feature_engineering")
    bundle = quiz._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == quiz.box.model_id
    assert bundle["text/plain"] == quiz.text(False)
    revealed = build_quiz("02_feature_engineering", reveal=True)._repr_mimebundle_()["text/plain"]
    assert "answer key is printed below" in revealed


def _quiz_notebook(path: Path) -> Path:
    import nbformat

    parameters = nbformat.v4.new_code_cell("reveal_answers = False")
    parameters.metadata["tags"] = ["parameters"]
    quiz = nbformat.v4.new_code_cell('from lifecycle.course.quiz import show_quiz\n\nshow_quiz("06_canary_release", '
                                     'reveal=reveal_answers)')
    notebook = nbformat.v4.new_notebook(cells=[parameters, quiz])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
def test_papermill_keeps_the_text_and_prints_the_answer_key_when_revealed(workspace, tmp_path):
    import papermill

    executed = papermill.execute_notebook(
        str(_quiz_notebook(tmp_path / "quiz.ipynb")), str(tmp_path / "out.ipynb"), kernel_name="python3",
        parameters={"reveal_answers": "true"}, execution_timeout=60, progress_bar=False)
    display, printed = executed.cells[-1].outputs
    assert display["data"]["text/plain"].startswith("Quiz: 06_canary_release (4 questions)")
    assert "application/vnd.jupyter.widget-view+json" in display["data"]
    assert printed["name"] == "stdout" and printed["text"].startswith("Answer key: 06_canary_release")
    assert "   Answer: a\n" in printed["text"]


@pytest.mark.slow
def test_a_live_kernel_answers_clicks_sent_over_the_widget_protocol(workspace):
    """What a browser does, without one: set the radio's index and click Check through the comms."""
    from jupyter_client.manager import start_new_kernel

    kernel, client = start_new_kernel(kernel_name="python3")
    models: dict[str, dict] = {}

    def collect(message: dict) -> None:
        content = message["content"]
        if message["msg_type"] == "comm_open":
            models[content["comm_id"]] = dict(content["data"]["state"])
        elif message["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
            models.setdefault(content["comm_id"], {}).update(content["data"]["state"])

    def send(comm_id: str, data: dict) -> None:
        client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))

    try:
        client.execute_interactive('from lifecycle.course.quiz import show_quiz\nshow_quiz("06_canary_release")',
                                   output_hook=collect, timeout=60)
        radio = next(i for i, s in models.items() if s.get("_model_name") == "RadioButtonsModel")
        check = next(i for i, s in models.items() if "lifecycle-quiz-check" in s.get("_dom_classes", ()))
        feedback = next(i for i, s in models.items() if "lifecycle-quiz-feedback" in s.get("_dom_classes", ()))
        verdicts = []
        for index in (1, 0):  # a wrong option, then the right one
            send(radio, {"method": "update", "state": {"index": index}, "buffer_paths": []})
            send(check, {"method": "custom", "content": {"event": "click"}})
            # The kernel handles shell messages in order: once a cell sent after them is idle, the
            # feedback's updates are on iopub before that status.
            marker = client.execute("pass")
            while True:
                message = client.get_iopub_msg(timeout=30)
                collect(message)
                if message["parent_header"].get("msg_id") == marker and \
                        message["content"].get("execution_state") == "idle":
                    break
            verdicts.append(models[feedback]["value"])
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)
    assert "Not quite" in verdicts[0] and "not how fast either model is" in verdicts[0]
    assert "Correct" in verdicts[1] and "limited blast radius" in verdicts[1]
    row = next(r for r in progress_report() if r["lesson"] == "06_canary_release")
    assert (row["answered"], row["first_try_correct"], row["latest_correct"]) == (1, 0, 1)
