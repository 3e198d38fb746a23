#!/usr/bin/env python3
"""Reads and writes ML Metadata stores with ml-metadata's own client, for zenml-run's tests.

Usage (prints one JSON document on stdout):
  mlmd_compat.py dump   STORE [--readonly]  everything in the store, as ml-metadata reads it
  mlmd_compat.py create STORE               a store made by ml-metadata, with its own types,
                                            artifacts, executions, contexts and events; prints its dump
STORE is a SQLite file path, or mysql://USER@HOST:PORT/DATABASE with the password in the
environment variable ZENML_TEST_MYSQL_PASSWORD.
"""
import json
import os
import sys
from urllib.parse import urlparse

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd


def connect(store, readonly=False):
    config = mlmd.ConnectionConfig()
    if store.startswith("mysql://"):
        url = urlparse(store)
        config.mysql.host = url.hostname
        config.mysql.port = url.port or 3306
        config.mysql.user = url.username
        config.mysql.password = os.environ.get("ZENML_TEST_MYSQL_PASSWORD", "")
        config.mysql.database = url.path.lstrip("/")
        config.mysql.skip_db_creation = True
    else:
        config.sqlite.filename_uri = store
        config.sqlite.connection_mode = (
            mlmd.SqliteMetadataSourceConfig.READONLY if readonly else mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        )
    return metadata_store.MetadataStore(config)


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    return {"int_value": v.int_value, "double_value": v.double_value, "string_value": v.string_value,
            "bool_value": v.bool_value}.get(kind, str(getattr(v, kind)))


def props(node):
    return {name: value(v) for name, v in sorted(node.properties.items())}


def custom(node):
    return {name: value(v) for name, v in sorted(node.custom_properties.items())}


def dump(store):
    types = {}
    for kind, getter in (("artifact", store.get_artifact_types), ("execution", store.get_execution_types),
                         ("context", store.get_context_types)):
        for t in getter():
            types[f"{kind}:{t.id}"] = t.name
    contexts = []
    for c in sorted(store.get_contexts(), key=lambda c: c.id):
        contexts.append({
            "id": c.id, "type": c.type, "name": c.name, "properties": props(c), "custom": custom(c),
            "parents": sorted(p.name for p in store.get_parent_contexts_by_context(c.id)),
            "executions": sorted(e.id for e in store.get_executions_by_context(c.id)),
            "artifacts": sorted(a.id for a in store.get_artifacts_by_context(c.id)),
        })
    executions = [{
        "id": e.id, "type": e.type, "name": e.name, "state": mlmd.Execution.State.Name(e.last_known_state),
        "properties": props(e), "custom": custom(e),
    } for e in sorted(store.get_executions(), key=lambda e: e.id)]
    artifacts = [{
        "id": a.id, "type": a.type, "name": a.name, "uri": a.uri, "state": mlmd.Artifact.State.Name(a.state),
        "properties": props(a), "custom": custom(a),
    } for a in sorted(store.get_artifacts(), key=lambda a: a.id)]
    events = []
    for e in store.get_events_by_execution_ids([x["id"] for x in executions]):
        path = []
        for step in e.path.steps:
            path.append(step.key if step.WhichOneof("value") == "key" else step.index)
        events.append({"artifact_id": e.artifact_id, "execution_id": e.execution_id,
                       "type": mlmd.Event.Type.Name(e.type), "path": path})
    events.sort(key=lambda e: (e["execution_id"], e["artifact_id"], e["type"]))
    type_properties = {}
    for kind, getter in (("artifact", store.get_artifact_types), ("execution", store.get_execution_types),
                         ("context", store.get_context_types)):
        for t in getter():
            type_properties[f"{kind}:{t.name}"] = {k: mlmd.PropertyType.Name(v) for k, v in sorted(t.properties.items())}
    return {"types": sorted(types.values()), "type_properties": type_properties, "contexts": contexts,
            "executions": executions, "artifacts": artifacts, "events": events}


def create(store):
    """A small TFX-like store: ml-metadata's own types and records, made by its client."""
    examples_type = mlmd.ArtifactType(name="Examples")
    examples_type.properties["span"] = mlmd.INT
    examples_type.properties["split_names"] = mlmd.STRING
    examples_type_id = store.put_artifact_type(examples_type)
    # Same name as an output type zenml-run uses: its declaration must survive our writes.
    model_type = mlmd.ArtifactType(name="Model")
    model_type.properties["framework"] = mlmd.STRING
    model_type_id = store.put_artifact_type(model_type)
    trainer_type = mlmd.ExecutionType(name="Trainer")
    trainer_type.properties["epochs"] = mlmd.INT
    trainer_type_id = store.put_execution_type(trainer_type)
    pipeline_type_id = store.put_context_type(mlmd.ContextType(name="pipeline"))
    run_type_id = store.put_context_type(mlmd.ContextType(name="pipeline_run"))

    examples = mlmd.Artifact(type_id=examples_type_id, uri="/tfx/examples/1", name="examples-1", state=mlmd.Artifact.LIVE)
    examples.properties["span"].int_value = 3
    examples.properties["split_names"].string_value = '["train", "eval"]'
    examples.custom_properties["rows"].int_value = 1000
    model = mlmd.Artifact(type_id=model_type_id, uri="/tfx/model/1", name="model-1", state=mlmd.Artifact.LIVE)
    model.properties["framework"].string_value = "tensorflow"
    model.custom_properties["accuracy"].double_value = 0.875
    [examples_id, model_id] = store.put_artifacts([examples, model])

    trainer = mlmd.Execution(type_id=trainer_type_id, name="trainer-1", last_known_state=mlmd.Execution.COMPLETE)
    trainer.properties["epochs"].int_value = 5
    [trainer_id] = store.put_executions([trainer])

    pipeline = mlmd.Context(type_id=pipeline_type_id, name="tfx-pipeline")
    run = mlmd.Context(type_id=run_type_id, name="tfx-run-1")
    [pipeline_id, run_id] = store.put_contexts([pipeline, run])
    store.put_parent_contexts([mlmd.ParentContext(child_id=run_id, parent_id=pipeline_id)])

    input_event = mlmd.Event(artifact_id=examples_id, execution_id=trainer_id, type=mlmd.Event.INPUT)
    input_event.path.steps.add().key = "examples"
    input_event.path.steps.add().index = 0
    output_event = mlmd.Event(artifact_id=model_id, execution_id=trainer_id, type=mlmd.Event.OUTPUT)
    output_event.path.steps.add().key = "model"
    store.put_events([input_event, output_event])
    store.put_attributions_and_associations(
        [mlmd.Attribution(context_id=c, artifact_id=a) for c in (pipeline_id, run_id) for a in (examples_id, model_id)],
        [mlmd.Association(context_id=c, execution_id=trainer_id) for c in (pipeline_id, run_id)])


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("dump", "create"):
        print(__doc__, file=sys.stderr)
        return 2
    command, target = sys.argv[1], sys.argv[2]
    readonly = "--readonly" in sys.argv[3:]
    store = connect(target, readonly=readonly)
    if command == "create":
        create(store)
    json.dump(dump(store), sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
