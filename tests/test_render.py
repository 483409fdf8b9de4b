"""Rendering charts to YAML: one file per chart, CloudFormation values as named placeholders."""

from __future__ import annotations

import cdk8s
import yaml
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from eks_llm_stack.charts.render import dump_documents, placeholders, write_manifests


def test_placeholders_name_the_resource_to_read() -> None:
    assert placeholders({"Ref": "Bucket1"}) == "${Bucket1}"
    assert placeholders({"Fn::GetAtt": ["Fs", "DNSName"]}) == "${Fs.DNSName}"
    assert placeholders({"Fn::Join": ["", ["s3://", {"Ref": "B"}, "/models"]]}) == "s3://${B}/models"
    assert placeholders({"Fn::ImportValue": "Llm-Data:ExportsOutputRefFs"}) == "${import:Llm-Data:ExportsOutputRefFs}"
    assert placeholders({"a": [1, {"Ref": "X"}]}) == {"a": [1, "${X}"]}


def test_write_manifests_resolves_tokens_through_the_stack(tmp_path) -> None:
    stack = Stack(App(), "S")
    bucket = s3.Bucket(stack, "Models")
    chart = cdk8s.Chart(cdk8s.App(), "demo")
    cdk8s.ApiObject(chart, "cm", api_version="v1", kind="ConfigMap", metadata={"name": "demo"}).add_json_patch(
        cdk8s.JsonPatch.add("/data", {"bucket": bucket.bucket_name})
    )
    (path,) = write_manifests([("demo", chart)], tmp_path, resolver=stack)
    (doc,) = list(yaml.safe_load_all(path.read_text()))
    logical = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    assert doc["data"]["bucket"] == "${" + logical + "}"


def test_write_manifests_replaces_old_files(tmp_path) -> None:
    (tmp_path / "stale.yaml").write_text("kind: Old\n")
    chart = cdk8s.Chart(cdk8s.App(), "x")
    cdk8s.ApiObject(chart, "ns", api_version="v1", kind="Namespace", metadata={"name": "x"})
    write_manifests([("x", chart)], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["x.yaml"]


def test_dist_manifests_are_byte_for_byte_what_safe_dump_all_writes(any_synth) -> None:
    # dump_documents remembers scalar analyses between documents; the bytes must stay PyYAML's own.
    # (10-crds/ holds the vendored CRD files verbatim.)
    files = [p for p in sorted((any_synth.outdir / "manifests").glob("**/*.yaml")) if p.parent.name != "10-crds"]
    assert len(files) > 5
    for path in files:
        text = path.read_text()
        docs = list(yaml.safe_load_all(text))
        assert text == yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False), path.name
        assert dump_documents(docs) == text, path.name
