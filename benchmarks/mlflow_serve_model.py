"""Save the flights model as an MLflow model; runs inside ``.bench/mlflow-venv``.

    python benchmarks/mlflow_serve_model.py MODEL.pkl ROWS.json OUT_DIR

``MODEL.pkl`` is the fitted scikit-learn pipeline pickled by ``benchmarks/serving.py``
together with the scikit-learn version it was fitted with; a different version here is
refused (a pickle is only safe to load with the version that wrote it). ``ROWS.json``
holds input rows, used to infer the model signature. The model is saved with
``mlflow.sklearn.save_model`` and ``pyfunc_predict_fn="predict_proba"``, so that
``/invocations`` returns probabilities, as ctloop's server does, in MLflow's default
(skops) format with the tree predictor type trusted.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
"""Types MLflow's default (skops) format asks to trust for this model: it was fitted by
the benchmark itself."""


def main(model_path: str, rows_path: str, out_dir: str) -> None:
    """Load the pickled pipeline and save it as an MLflow model in ``out_dir``."""
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from mlflow.models import infer_signature

    saved = pickle.loads(Path(model_path).read_bytes())
    if saved["sklearn"] != sklearn.__version__:
        raise SystemExit(
            f"the model was fitted with scikit-learn {saved['sklearn']} but this environment "
            f"has {sklearn.__version__}; install the same version in both"
        )
    model = saved["model"]
    sample = pd.DataFrame(json.loads(Path(rows_path).read_text()))
    signature = infer_signature(sample, model.predict_proba(sample))
    mlflow.sklearn.save_model(
        model,
        out_dir,
        signature=signature,
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=TRUSTED,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
