"""bench/store/schema.py: the names the report reads are the names the code writes."""

from __future__ import annotations

from dataclasses import fields

from bench.store import schema
from mnist_cnn.metrics import ModelMetrics


def test_the_model_measurement_names_are_the_fields_modelmetrics_writes():
    """Trials store dataclasses.asdict(ModelMetrics): a renamed field would leave the report's
    size and speed columns empty without an error, so the schema's names must follow it."""
    names = {schema.ATTR_PARAMETERS, schema.ATTR_FLOPS_PER_IMAGE, schema.ATTR_LATENCY_MS_BATCH1,
             schema.ATTR_LATENCY_MS_BATCH1_Q1, schema.ATTR_LATENCY_MS_BATCH1_Q3,
             schema.ATTR_LATENCY_CALLS, schema.ATTR_INFERENCE_IMAGES_PER_SECOND}
    assert names == {field.name for field in fields(ModelMetrics)}


def test_every_stored_name_is_distinct():
    values = [value for name, value in vars(schema).items()
              if name.startswith(("ATTR_", "STUDY_ATTR_"))]
    assert len(values) == len(set(values))
