"""The REST server's own description (/openapi.json) is what it does: requests generated from the
published document (schemathesis: bodies that fit the schema, and bodies that break it) get only the
statuses the document lists, never a 5xx, answers that fit their documented schemas, and every
schema-valid body is accepted. The app runs in process (ASGI), with a prediction log, so the routes
answer as `lifecycle serve rest` does."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from lifecycle.data import generate_transactions
from lifecycle.features import split_by_time
from lifecycle.serving.log_writer import PredictionLogWriter
from lifecycle.serving.rest import create_app
from lifecycle.tracking import ServedModel
from lifecycle.training import train_fraud_model


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from threadpoolctl import threadpool_limits

    train, test = split_by_time(generate_transactions(3_000, seed=5, users=300), 0.25)
    with threadpool_limits(limits=1):
        trained = train_fraud_model(train, test, "hgb", seed=5)
    served = ServedModel(trained.model, trained.threshold, "fraud-detector", "3", "models:/fraud-detector@champion",
                         train)
    writer = PredictionLogWriter(tmp_path_factory.mktemp("log") / "predictions.sqlite")
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(served, on_prediction=writer))
    writer.close()


# The scoring routes with bodies that fit the schema and bodies that break it; the GET routes take no input.
CASES = [("/predict", "POST", GenerationMode.POSITIVE), ("/predict", "POST", GenerationMode.NEGATIVE),
         ("/predict/batch", "POST", GenerationMode.POSITIVE), ("/predict/batch", "POST", GenerationMode.NEGATIVE),
         ("/ready", "GET", GenerationMode.POSITIVE), ("/metadata", "GET", GenerationMode.POSITIVE),
         ("/health", "GET", GenerationMode.POSITIVE)]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_every_answer_is_one_the_published_document_describes(api, path, method, mode):
    """Schemathesis' checks: no 5xx, only documented statuses, headers and content types, answers that fit
    their schemas, schema-valid bodies accepted and schema-breaking ones rejected with a 4xx."""
    operation = api[path][method]
    answered = set()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call_and_validate()
        answered.add(response.status_code)
        if mode is GenerationMode.POSITIVE and path.startswith("/predict"):
            assert response.status_code == 200, (case.body, response.text)

    check()
    assert answered, "no request was generated"


def test_the_document_states_every_status_and_constraint_of_the_scoring_routes(api):
    document = api.raw_schema
    for path in ("/predict", "/predict/batch"):
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "413", "422", "503"}, path
        assert "Retry-After" in responses["503"]["headers"]
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    timestamp = body["properties"]["timestamp"]
    assert timestamp["pattern"].startswith("^((20[0-9]{2}|2100)-") and "2000 to 2100" in timestamp["description"]
    assert body["properties"]["amount"] == {**body["properties"]["amount"], "minimum": 0, "maximum": 1_000_000}
    assert body["additionalProperties"] is False
