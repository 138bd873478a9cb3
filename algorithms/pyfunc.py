"""What the families' MLflow pyfunc models share: optional DataFrame columns, and a ModelExport of a state file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch


def row_value(row: dict, key: str, default):
    """A DataFrame row's optional column: `default` where it is absent or NaN (pandas' missing value)."""
    value = row.get(key)
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else value


def state_export(model, state: dict, path: Path, artifact: str, inputs: list, example: pd.DataFrame,
                 output_shape: tuple, description: str):
    """A pyfunc ModelExport whose `load_context` reads `state`, saved at `path` as the artifact `artifact`;
    `predict` takes a DataFrame with the columns `inputs` and returns float32 arrays of `output_shape`."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from orchestration.family import ModelExport

    torch.save(state, path)
    signature = ModelSignature(inputs=Schema(inputs),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *output_shape))]))
    return ModelExport("pyfunc", model, signature, example, description, artifacts={artifact: str(path)})
