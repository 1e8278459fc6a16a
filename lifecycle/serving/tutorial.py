"""The tutorial's model server, kept as written, to measure against (do not copy it).

What is wrong with it, and where lesson 05 shows the fix:

* it takes any ``dict`` and feeds ``list(features.values())`` to the model: the values go in
  the order the client happened to write the keys, so a client that sends them in another
  order gets a silently wrong answer (our server validates named, typed fields and builds the
  row in the model's own column order);
* the client must compute the features itself, so training and serving can disagree (ours
  computes them with :mod:`lifecycle.features`, the code training used);
* it returns a class, not a probability, and no model version;
* the endpoint is a plain ``def`` calling scikit-learn on one row per request: each call pays
  scikit-learn's per-call cost, in a thread pool, with OpenMP threads per call fighting over
  the cores.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def create_tutorial_app(model: Any) -> FastAPI:
    """The tutorial's FastAPI server around a fitted scikit-learn model."""
    app = FastAPI()

    @app.post("/predict")
    def predict(features: dict):
        prediction = model.predict([list(features.values())])
        return {"prediction": int(prediction[0])}

    # Not in the tutorial: lets the benchmark see when the server is up. The predict path is untouched.
    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app
