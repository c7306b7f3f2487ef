"""Every error ctloop raises on purpose.

The hierarchy::

    CtloopError                      root: catch this to catch everything ctloop means
    ├── ConfigError                  a bad setting in ctloop.yaml or the environment
    ├── StoreError                   metadata or artifact store
    │   ├── NotFoundError            a run, execution, artifact or data version that is not there
    │   ├── IntegrityError           bytes that do not match their digest, a path outside the root
    │   ├── StoreUnavailableError    the database, object store or ctloop server cannot be reached
    │   ├── AccessDeniedError        a ctloop server refused the API key (none, unknown, revoked, role too low)
    │   └── ConflictError            a compare-and-set write that lost: the record moved since it was read
    ├── ArtifactError                typed artifacts and materializers
    │   ├── UnsupportedTypeError     a value no materializer handles
    │   └── ModelError               model artifacts: flavors, signatures, loading
    │       ├── UnsafeModelError     a model that only pickle could save or load, without trust
    │       ├── ModelCompatibilityError  a model that needs packages or versions not installed
    │       ├── SignatureError       input that does not match a model's signature
    │       │   └── TransformInputError  input a model's Transform refuses (the client's fault)
    │       └── TransformError       a model's Transform failed on valid input (its code's fault)
    ├── PipelineError                building or running a pipeline
    │   ├── PipelineDefinitionError  a cycle, an unknown step output, a bad decorator use
    │   ├── ParameterError           an unknown parameter or a value of the wrong type
    │   ├── MissingInputError        an input file or folder that does not exist
    │   ├── StepError                user code inside a step raised (keeps the traceback)
    │   └── RunFailedError           a run ended with failed steps
    ├── DataVersionError             `ctloop data add/get` problems
    ├── DataValidationError          statistics, schemas, anomalies and drift (ctloop.data)
    │   ├── StatisticsError          input that cannot be summarised, statistics that do not merge
    │   ├── SchemaError              a schema document or setting that is invalid
    │   └── AnomaliesFoundError      data that breaks its schema (raised on request)
    ├── RegistryError                the model registry (ctloop.registry)
    │   ├── ModelNotFoundError       a registered model that is not there
    │   ├── ModelVersionNotFoundError  a version number a model does not have
    │   ├── AliasNotFoundError       an alias a model does not have
    │   ├── ModelReferenceError      a bad model or alias name, a "NAME@X" that does not parse
    │   ├── RollbackError            an alias with no earlier holder to go back to
    │   └── ApprovalError            a promotion that lacks its approval, an approval that cannot change state
    ├── EvaluationError              metrics, slices, attributions and the gate (ctloop.evaluate)
    │   └── GateFailedError          a candidate model that fails its gate (raised on request)
    └── ServingError                 serving models and testing served models (ctloop.serve)
        ├── LoadTestError            a load test that cannot run: bad target, body or settings
        ├── DeploymentError          a deployment change that cannot be made (bad canary, none to promote)
        ├── FeedbackError            a feedback (label) file or batch that cannot be read
        ├── BatchPredictionError     batch input that cannot be read or scored (names column and rows)
        └── PredictionRequestError   a prediction request a client got wrong (a 4xx answer)
    TrainingError                    fitting, tuning and checkpoints (ctloop.train)
    ├── SearchSpaceError             a search space that does not parse: bad kind, bounds or choices
    ├── TuningError                  a study that cannot run or found no successful trial
    └── CheckpointError              a checkpoint that cannot be saved or read back
    FeatureError                     the feature store (ctloop.features)
    └── FeatureDefinitionError       an entity, feature view or service that is invalid
    TriggerError                     triggers and the scheduler (ctloop.triggers)
    ├── TriggerConfigError           a `pipelines:`/`triggers:` entry in ctloop.yaml that is invalid
    └── TriggerBusyError             a firing refused: the trigger's runs are at max_concurrent
    WorkerLostError                  the worker running a task died (killed, out of memory, machine lost)

A message is a sentence: it names the object, the bad value and the fix.
"""

from __future__ import annotations


class CtloopError(Exception):
    """Root of every error ctloop raises on purpose."""

    exit_code = 1


class ConfigError(CtloopError):
    """A setting in ``ctloop.yaml`` or the environment is invalid."""


class StoreError(CtloopError):
    """The metadata store or the artifact store failed."""


class NotFoundError(StoreError):
    """A run, execution, artifact or data version does not exist."""


class IntegrityError(StoreError):
    """Stored bytes do not match their digest, or a path escapes the store root."""


class StoreUnavailableError(StoreError):
    """The database, the object store or the ctloop server cannot be reached."""


class AccessDeniedError(StoreError):
    """A ctloop server refused the API key: missing, unknown, expired, revoked (401) or of
    a role too low for the call (403)."""


class ConflictError(StoreError):
    """A compare-and-set write lost a race: what it expected to replace (the latest
    version of a data set, say) changed since it was read; read again and retry."""


class ArtifactError(CtloopError):
    """A typed artifact could not be saved or loaded."""


class UnsupportedTypeError(ArtifactError):
    """A step returned a value that no registered materializer handles."""


class ModelError(ArtifactError):
    """A model artifact could not be built, saved, loaded or called."""


class UnsafeModelError(ModelError):
    """A model that only pickle can save or load, and the caller did not trust it."""


class ModelCompatibilityError(ModelError):
    """A model needs a package that is missing, or a version too far from the one it
    was saved with."""


class SignatureError(ModelError):
    """Input that does not match a model's signature: a missing or extra column, a value
    of the wrong type. ``field`` names the column (or ``None`` for the whole input)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransformInputError(SignatureError):
    """Raised by a model's :class:`~ctloop.artifacts.model.Transform` for input it
    refuses; answered as a 4xx naming ``field``."""


class TransformError(ModelError):
    """A model's :class:`~ctloop.artifacts.model.Transform` raised or returned something
    unusable on input it did not refuse: a bug in its code, answered as a 5xx."""


class PipelineError(CtloopError):
    """A pipeline could not be built or run."""


class PipelineDefinitionError(PipelineError):
    """The pipeline's graph is invalid: a cycle, a bad output, a misused decorator."""


class ParameterError(PipelineError):
    """A pipeline or step parameter is unknown or has a value of the wrong type."""

    exit_code = 2


class MissingInputError(PipelineError):
    """An input file or folder given to a pipeline does not exist."""

    exit_code = 2


class StepError(PipelineError):
    """User code inside a step raised; the original traceback is kept.

    ``step`` and ``run_id`` name where it happened, ``traceback_text`` holds the
    formatted original traceback (also stored on the execution record).
    """

    def __init__(self, step: str, run_id: str, message: str, traceback_text: str = "") -> None:
        super().__init__(
            f"step '{step}' of run {run_id[:8]} failed: {message}; fix the cause and continue "
            f"with `ctloop resume {run_id[:8]}`"
        )
        self.step = step
        self.run_id = run_id
        self.traceback_text = traceback_text


class RunFailedError(PipelineError):
    """A run finished with at least one failed step."""

    def __init__(self, run_id: str, failed_steps: list[str], message: str = "") -> None:
        steps = ", ".join(failed_steps) or "?"
        text = f"run {run_id[:8]} failed in step(s) {steps}"
        if message:
            text += f": {message}"
        text += f"; fix the cause and continue with `ctloop resume {run_id[:8]}`"
        super().__init__(text)
        self.run_id = run_id
        self.failed_steps = failed_steps


class DataVersionError(CtloopError):
    """A data version could not be added or fetched."""


class DataValidationError(CtloopError):
    """Statistics, a schema, a validation or a drift check could not be done or failed."""


class StatisticsError(DataValidationError):
    """Data cannot be summarised, or two statistics cannot be merged or compared."""


class SchemaError(DataValidationError):
    """A schema document or a schema setting is invalid."""


class AnomaliesFoundError(DataValidationError):
    """Data breaks its schema; ``anomalies`` holds what was found."""

    def __init__(self, message: str, anomalies: object = None) -> None:
        super().__init__(message)
        self.anomalies = anomalies


class RegistryError(CtloopError):
    """The model registry refused or failed an operation."""


class ModelNotFoundError(RegistryError):
    """A registered model does not exist."""


class ModelVersionNotFoundError(RegistryError):
    """A registered model has no version with this number."""


class AliasNotFoundError(RegistryError):
    """A registered model has no alias with this name."""


class ModelReferenceError(RegistryError):
    """A model name, alias name or ``NAME@ALIAS`` / ``NAME@VERSION`` reference is malformed."""

    exit_code = 2


class RollbackError(RegistryError):
    """An alias has no earlier holder to roll back to."""


class ApprovalError(RegistryError):
    """A promotion into an environment that requires an approval it does not have, or an
    approval asked to move where its state does not allow (approving a rejected one)."""


class EvaluationError(CtloopError):
    """A model could not be evaluated or gated: bad predictions, slices or thresholds."""


class GateFailedError(EvaluationError):
    """A candidate model failed its gate; ``blessing`` holds every comparison."""

    def __init__(self, message: str, blessing: object = None) -> None:
        super().__init__(message)
        self.blessing = blessing


class ServingError(CtloopError):
    """A model could not be served, or a served model could not be reached or tested."""


class LoadTestError(ServingError):
    """A load test cannot run: an unreachable server, a bad request body or bad settings."""


class DeploymentError(ServingError):
    """A deployment change cannot be made: an unknown deployment, a bad traffic share,
    no canary to promote or stop."""


class FeedbackError(ServingError):
    """Feedback (ground-truth labels) cannot be read: a missing file or column."""


class PredictionRequestError(ServingError):
    """A prediction request the client got wrong: bad JSON, an unknown format, a body too
    large. ``status`` is the HTTP status to answer with; ``field`` names the part at fault."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class MonitorError(CtloopError):
    """A monitoring job cannot run: a bad window, setting, model or baseline."""


class AlertError(MonitorError):
    """An alert sink is misconfigured or a delivery failed."""


class TrainingError(CtloopError):
    """Fitting or tuning a model failed for a reason ctloop can name (``ctloop.train``)."""


class SearchSpaceError(TrainingError):
    """A search space is invalid; ``parameter`` names the entry at fault."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class TuningError(TrainingError):
    """A tuning study cannot run, or no trial of it succeeded."""


class CheckpointError(TrainingError):
    """A training checkpoint cannot be saved or read back."""


class FeatureError(CtloopError):
    """Features could not be defined, joined, applied or served."""


class FeatureDefinitionError(FeatureError):
    """An entity, feature view, on-demand transform or feature service is invalid."""


class TriggerError(CtloopError):
    """A trigger cannot be evaluated or fired (``ctloop.triggers``)."""


class TriggerConfigError(TriggerError, ConfigError):
    """A ``pipelines:`` or ``triggers:`` entry of ctloop.yaml is invalid."""


class TriggerBusyError(TriggerError):
    """A firing was refused because the trigger already has ``max_concurrent`` active runs."""


class BatchPredictionError(ServingError):
    """Batch prediction cannot go on: an unreadable input, a missing column, a value of
    the wrong type (the message names the column, the chunk and the row)."""


class WorkerLostError(CtloopError):
    """The worker running a task died (killed, out of memory, its machine lost); the
    original error is its ``__cause__``."""
