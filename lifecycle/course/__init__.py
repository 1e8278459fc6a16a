"""The course around the fraud system: what a learner and an instructor use to learn it.

Nothing in the system's stages imports this package (a test pins it); it builds on them.

Modules: :mod:`~lifecycle.course.runner` (``lifecycle run``: papermill over the lessons, ``record()``,
``build/summary.json``), :mod:`~lifecycle.course.quiz` and :mod:`~lifecycle.course.progress` (quiz
widgets from ``quizzes/*.yaml``, a learner's score), :mod:`~lifecycle.course.exercises` (checkers that
say what is wrong), :mod:`~lifecycle.course.environment` (lesson 00's environment check and map),
:mod:`~lifecycle.course.experiments` (lesson 02's measurements), :mod:`~lifecycle.course.tutorial` (the
tutorial's own server, as a baseline), :mod:`~lifecycle.course.serving_bench` (lesson 05's benchmark,
``lifecycle bench serving``), :mod:`~lifecycle.course.playgrounds` (the "Try it" widgets at the end of
lessons 02, 03, 06 and 07).
"""
