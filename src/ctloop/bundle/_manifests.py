"""The deployment files of a bundle: entrypoint, Dockerfile, Kubernetes Deployment and
Service, KServe InferenceService, MLServer settings and runtime, README.

Manifests are built as data and dumped as YAML/JSON (never string-templated), so what is
written is always well-formed; the Dockerfile and scripts are Jinja2 templates.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dns_name", "render_deployment_files"]

_HEALTH_READY = "/v2/health/ready"
_HEALTH_LIVE = "/v2/health/live"
_UID = 10001


def dns_name(model: str) -> str:
    """``model`` as a Kubernetes object name (RFC 1123: lower case, digits and ``-``).

    >>> dns_name("Flights_delay.v2")
    'flights-delay-v2'
    """
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")
    return (name or "model")[:63].rstrip("-")


def render_deployment_files(settings: dict[str, Any]) -> dict[str, str]:
    """Every deployment file of the bundle, by its path in the bundle."""
    import yaml

    k8s = [_deployment(settings), _service(settings)]
    return {
        "entrypoint.sh": _template("entrypoint.sh.j2", settings),
        "Dockerfile": _template("Dockerfile.j2", settings),
        ".dockerignore": "README.md\nk8s/\nkserve/\n",
        "README.md": _template("README.md.j2", settings),
        "k8s/deployment.yaml": yaml.safe_dump_all(k8s, sort_keys=False),
        "kserve/inferenceservice.yaml": yaml.safe_dump(
            _inference_service(settings), sort_keys=False
        ),
        "mlserver/model-settings.json": json.dumps(_model_settings(settings), indent=2) + "\n",
        "mlserver/ctloop_runtime.py": _template("ctloop_runtime.py.j2", settings),
    }


def _template(name: str, settings: dict[str, Any]) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("ctloop.bundle", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # shell, Dockerfile and Python, not HTML
    )
    return env.get_template(name).render(**settings, dns_name=dns_name(settings["model"]))


def _labels(settings: dict[str, Any]) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": dns_name(settings["model"]),
        "app.kubernetes.io/version": str(settings["version"]),
        "app.kubernetes.io/managed-by": "ctloop",
    }


def _container(settings: dict[str, Any]) -> dict[str, Any]:
    port = int(settings["port"])
    return {
        "name": "model",
        "image": settings["image"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": "CTLOOP_HOME", "value": "/tmp/ctloop"}],
        "readinessProbe": {
            "httpGet": {"path": _HEALTH_READY, "port": port},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": _HEALTH_LIVE, "port": port},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": _UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
        },
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
    }


def _deployment(settings: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(settings)
    selector = {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": dns_name(settings["model"]), "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [_container(settings)],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                },
            },
        },
    }


def _service(settings: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(settings)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": dns_name(settings["model"]), "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _inference_service(settings: dict[str, Any]) -> dict[str, Any]:
    container = _container(settings)
    container["name"] = "kserve-container"  # the name KServe routes to
    container.pop("volumeMounts")
    container["securityContext"].pop("readOnlyRootFilesystem")
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": dns_name(settings["model"]),
            "labels": _labels(settings),
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 4,
                "containers": [container],
            }
        },
    }


def _model_input(column: dict[str, str]) -> dict[str, Any]:
    """One input of the model's metadata; text columns decode as ``str`` (MLServer's
    default content type for a request tensor that names none), not as bytes."""
    entry: dict[str, Any] = {"name": column["name"], "datatype": column["datatype"], "shape": [-1]}
    if column["datatype"] == "BYTES":
        entry["parameters"] = {"content_type": "str"}
    return entry


def _model_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": settings["model"],
        "implementation": "ctloop_runtime.CtloopModel",
        "parameters": {
            "uri": "..",
            "version": str(settings["version"]),
            "extra": {"flavor": settings["flavor"]},
        },
        "inputs": [_model_input(column) for column in settings.get("inputs", [])],
        "max_batch_size": 32,
        "max_batch_time": 0.002,
    }
