"""Deployable bundles: one folder that serves a model anywhere, without the workspace.

``ctloop bundle flights@champion -o bundle/`` writes::

    bundle/
      bundle.json              model, version, lineage ids, every file's sha256
      manifest.json            the artifact's manifest (its sha256 is the artifact digest)
      model/                   the model's files as stored (skops, ONNX, native formats)
      requirements.txt         pinned to the versions the model was trained with
      entrypoint.sh            ctloop serve on the bundled model, no store needed
      Dockerfile               dependencies in a layer before the model, non-root, HEALTHCHECK
      k8s/deployment.yaml      Deployment + Service
      kserve/inferenceservice.yaml   KServe InferenceService (Open Inference / V2 protocol)
      mlserver/model-settings.json   MLServer settings
      README.md

``ctloop serve bundle/`` checks every file against ``bundle.json`` and serves the model
from a private scratch workspace (``$CTLOOP_HOME`` or a temporary folder).

>>> info = build_bundle(workspace, "flights@champion", Path("bundle"))  # doctest: +SKIP
>>> info.reference, open_bundle(Path("bundle")).reference               # doctest: +SKIP
('flights@3', 'flights@champion')
"""

from __future__ import annotations

from ctloop.bundle._build import BundleInfo, build_bundle
from ctloop.bundle._open import OpenedBundle, is_bundle, open_bundle

__all__ = ["BundleInfo", "OpenedBundle", "build_bundle", "is_bundle", "open_bundle"]
