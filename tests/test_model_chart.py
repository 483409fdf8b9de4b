"""ModelChart (one model with its fetch Job, key, autoscaler, prepull) and the ModelFetchJob construct."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cdk8s
import pytest

from eks_llm_stack.charts import ModelApiKey, ModelChart, ModelChartProps, ModelFetch, ModelFetchJob, SyncedSecret
from eks_llm_stack.charts.model_fetch import model_fetch_job
from eks_llm_stack.charts.namespaces import NamespacesChart, NamespacesChartProps, NamespaceSpec
from eks_llm_stack.charts.vllm import VllmModelProps, WeightsFromClaim
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.gates.manifests import validate_manifests
from tests.conftest import CRD_DIR

NS = "llm-serving"
FETCH = ModelFetch(
    name="llama", claim_name="model-cache-efs", hf_repo="meta-llama/Llama-3.1-8B", service_account="llama"
)
MODEL = VllmModelProps(
    name="llama",
    namespace=NS,
    weights=WeightsFromClaim(claim_name="model-cache-efs", path="llama", wait_for_fetch=True),
    pools=("inference",),
    instance_type="g6e.xlarge",
)


def render(props: ModelChartProps) -> list[dict[str, Any]]:
    return list(ModelChart(cdk8s.App(), "model-llama", props=props).to_json())


def test_fetch_job_construct_is_the_plain_manifest() -> None:
    chart = cdk8s.Chart(cdk8s.App(), "c")
    ModelFetchJob(chart, "Fetch", props=FETCH, namespace=NS)
    assert list(chart.to_json()) == [model_fetch_job(FETCH, NS)]


def test_fetch_job_refuses_a_bad_namespace() -> None:
    with pytest.raises(ConfigError) as err:
        ModelFetchJob(cdk8s.Chart(cdk8s.App(), "c"), "Fetch", props=FETCH, namespace="Bad_NS")
    assert "namespace" in str(err.value) and "Bad_NS" in str(err.value)


def test_model_chart_holds_the_model_and_its_fetch_job_after_the_service_account() -> None:
    docs = render(ModelChartProps(model=MODEL, fetch=FETCH, external_namespace=True))
    kinds = [d["kind"] for d in docs]
    assert {"Deployment", "Service", "ServiceAccount", "Job"} <= set(kinds)
    assert kinds.index("ServiceAccount") < kinds.index("Job")
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job == model_fetch_job(FETCH, NS)
    assert validate_manifests(docs, crd_dir=CRD_DIR) == []


def test_model_chart_syncs_the_api_key_before_the_workload() -> None:
    model = replace(MODEL, api_key_secret="llama-api-key")
    key = ModelApiKey(secret=SyncedSecret(name="llama-api-key", remote_key="llm/api-keys/llama", secret_key="api-key"))
    docs = render(ModelChartProps(model=model, api_key=key, external_namespace=True))
    kinds = [d["kind"] for d in docs]
    assert kinds.index("ExternalSecret") < kinds.index("Deployment")
    assert validate_manifests(docs, crd_dir=CRD_DIR) == []


def test_model_chart_props_refuse_a_key_that_is_not_the_mounted_one() -> None:
    model = replace(MODEL, api_key_secret="llama-api-key")
    with pytest.raises(ConfigError) as err:
        ModelChartProps(model=model)
    text = str(err.value)
    assert "api_key" in text and "llama-api-key" in text and "ModelApiKey" in text
    with pytest.raises(ConfigError) as err:
        ModelChartProps(model=MODEL, api_key=ModelApiKey(secret=SyncedSecret(name="x", remote_key="k")))
    assert "api_key" in str(err.value) and "drop api_key" in str(err.value)


def test_model_chart_wants_its_namespace_in_the_app() -> None:
    app = cdk8s.App()
    ModelChart(app, "model-llama", props=ModelChartProps(model=MODEL))
    with pytest.raises(Exception, match="no Namespace 'llm-serving'"):
        app.synth_yaml()
    ok = cdk8s.App()
    NamespacesChart(ok, "namespaces", props=NamespacesChartProps(namespaces=(NamespaceSpec(name=NS),)))
    ModelChart(ok, "model-llama", props=ModelChartProps(model=MODEL))
    assert "kind: Job" not in ok.synth_yaml()


def test_the_serving_stack_applies_model_charts(production_synth) -> None:
    charts = {name: chart for name, chart, _ in production_synth.built.platform.charts.entries}
    models = [n for n in charts if n.startswith("model-")]
    assert models and all(isinstance(charts[n], ModelChart) for n in models)
    fetched = [n for n in models if charts[n].fetch is not None]
    assert fetched, "production.example fetches weights for at least one model"
