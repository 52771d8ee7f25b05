"""Settings for every `fraudlab` command, read from `FRAUD_*` environment variables.

One `Settings` object holds every knob of the system; the same names work in local mode
(environment or `.env`) and in kind mode (container `env:`). Importing this module has no side
effects: nothing is created until a command asks for it.

Example:
    >>> from reference_app.config import Settings
    >>> Settings(n_customers=50).n_customers
    50
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FEATURE_DELAY_DAYS = 7


class Settings(BaseSettings):
    """Configuration of the fraud system; every field is `FRAUD_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    data_dir: str = "data"
    """Root of all datasets (raw, validated, quarantine, features): a local path or an fsspec URL."""

    # --- simulator (Fraud Detection Handbook, ch. 3.2) ------------------------------------
    n_customers: int = Field(5_000, gt=0)
    """Number of simulated customers (handbook reference run: 5 000)."""
    n_terminals: int = Field(10_000, gt=0)
    """Number of simulated payment terminals (handbook reference run: 10 000)."""
    nb_days: int = Field(183, gt=0)
    """Number of simulated days (handbook reference run: 183)."""
    start_date: dt.date = dt.date(2018, 4, 1)
    """First simulated day (handbook reference run: 2018-04-01)."""
    radius: float = Field(5.0, gt=0)
    """A customer uses the terminals within this distance on the 100x100 grid."""
    seed: int = 0
    """Seed of every random draw: the same seed gives the same dataset and model."""

    drift_start: dt.date | None = None
    """Inject drift from this day on (see `data.drift`); None: the handbook's data as is."""
    drift_extra_terminals: int = Field(0, ge=0)
    """Drift: extra compromised terminals per day (scenario 2 at a higher rate)."""
    drift_amount_factor: float = Field(1.0, gt=0)
    """Drift: every amount multiplied by this factor."""
    drift_night_customers: int = Field(0, ge=0)
    """Drift: customers per day hit by the new night card-testing pattern (scenario 4)."""

    # --- evaluation protocol (handbook ch. 3.5) -------------------------------------------
    train_start: dt.date = dt.date(2018, 7, 25)
    """First day of the training week."""
    delta_train: int = Field(7, gt=0)
    """Training window length, in days."""
    delta_delay: int = Field(FEATURE_DELAY_DAYS, ge=0)
    """Delay period between training and test, in days: labels arrive this late."""
    delta_test: int = Field(7, gt=0)
    """Test window length, in days."""
    top_k: int = Field(100, gt=0)
    """k of Card Precision top-k (CP@k)."""

    # --- quality gate ---------------------------------------------------------------------
    gate_min_auc: float = 0.85
    """A logistic regression must reach this AUC ROC on the default simulated data."""
    gate_min_ap_logistic: float = 0.55
    """A logistic regression must reach this average precision."""
    gate_min_ap: float = 0.60
    """A model must reach this average precision to become champion."""

    # --- tracking and registry ------------------------------------------------------------
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    """MLflow tracking server URL."""
    mlflow_port: int = 5000
    """Port of the local MLflow server started by `fraudlab mlflow`."""
    mlflow_backend_store_uri: str = ""
    """MLflow backend store (e.g. `postgresql://…` in kind mode); empty → SQLite under `state_dir`."""
    mlflow_artifacts_destination: str = ""
    """Where the MLflow server stores artifacts (e.g. `s3://mlflow`); empty → a folder under `state_dir`."""
    mlflow_allowed_hosts: str = ""
    """Comma-separated Host headers the MLflow server accepts (DNS-rebinding protection); empty → MLflow's default."""
    mlflow_auth: bool = False
    """Run MLflow's basic-auth app: every request but `/health` needs a user."""
    mlflow_admin_username: str = "admin"
    """MLflow admin user, created on first start when `mlflow_auth` is on."""
    mlflow_admin_password: SecretStr | None = None
    """Password of the MLflow admin user (from a Secret in kind mode); required when `mlflow_auth` is on."""
    mlflow_auth_database_uri: str = ""
    """User store of MLflow's auth app; empty → SQLite under `state_dir`."""
    mlflow_prometheus_dir: str = ""
    """If set, the MLflow server exposes Prometheus metrics on `/metrics`, keeping state in this folder."""
    experiment: str = "fraud-detection"
    """MLflow experiment that training runs go to."""
    model_name: str = "fraud-detector"
    """Registered model name in the MLflow model registry."""

    device: str = "auto"
    """Training device for the MLP: "auto" (CUDA when present), "cuda" or "cpu"."""

    # --- serving --------------------------------------------------------------------------
    model_uri: str = "models:/fraud-detector@champion"
    """MLflow model URI that the MLServer runtime loads."""
    serve_host: str = "127.0.0.1"
    """Address MLServer binds to (0.0.0.0 in a container)."""
    http_port: int = 8080
    """MLServer REST port (V2 inference protocol)."""
    grpc_port: int = 8081
    """MLServer gRPC port."""
    metrics_port: int = 8082
    """MLServer Prometheus metrics port (`/metrics`)."""
    inference_url: str = "http://127.0.0.1:8080"
    """Base URL that `fraudlab replay` sends requests to."""
    flag_threshold: float = Field(0.5, ge=0, le=1)
    """A transaction whose fraud probability reaches this value counts as flagged."""
    max_batch_rows: int = Field(5_000, gt=0)
    """Largest number of transactions accepted in one inference request (larger → 400). A full
    batch fits in `max_body_bytes` as V2 JSON (tests/unit/test_settings.py), so a client that
    keeps to this limit never meets the body cap."""
    micro_batching: Literal["auto", "on", "off"] = "auto"
    """Score concurrent requests in one model call, after each request's own checks
    (`serving.batching.MicroBatcher`): "auto" merges when one model call costs ≥ 0.5 ms (a native
    model; a compiled ONNX model is faster alone), "on" always, "off" never."""
    replay_batch_size: int = Field(200, gt=0)
    """Transactions per request in `fraudlab replay`."""
    max_body_bytes: int = Field(1_000_000, gt=0)
    """Largest request body MLServer accepts, in bytes: REST bodies (compressed and decompressed)
    and gRPC messages. Larger → 413 (gRPC RESOURCE_EXHAUSTED) before anything is parsed. 1 MB
    holds ≈ 8 000 transactions as V2 JSON (≈ 125 bytes each): the tighter bound on a JSON batch."""
    max_gzip_ratio: float = Field(100.0, gt=1)
    """A gzip request body may expand to at most this many times its size (JSON of transactions:
    ≈ 4×; a gzip bomb: ≈ 1000×), and never beyond `max_body_bytes`."""

    # --- deployment patterns: the canary and shadow router (lab 10) ------------------------------
    canary_traffic: float = Field(10.0, ge=0, le=100)
    """The challenger's share of inference requests, in percent, when the split file does not
    exist yet: the canary's first step (the champion gets the rest). The SeldonDeployment's
    `traffic` and the ConfigMap `traffic-split` carry the same value (tests/static checks it)."""
    router_port: int = 8085
    """Port of the traffic router (`fraudlab route`), in front of the served variants."""
    router_champion_url: str = "http://127.0.0.1:8080"
    """Base URL of the champion's V2 server, behind the router."""
    router_challenger_url: str = "http://127.0.0.1:8180"
    """Base URL of the challenger's V2 server, behind the router (local mode: `fraudlab up
    --canary` serves the alias challenger there)."""
    router_shadow_url: str = ""
    """Base URL of the shadow's V2 server: it gets a copy of every inference request and its
    answers only reach the router's metrics. Empty: no shadow."""
    router_split_file: str = ""
    """JSON file with the split, `{"champion": 90, "challenger": 10}` (percent, summing to 100),
    re-read whenever it changes: a promotion without a restart. Empty: `<state_dir>/router/split.json`."""
    router_timeout_s: float = Field(30.0, gt=0)
    """Seconds the router waits for a variant's answer (the shadow's too) before giving up."""
    serving_admin_token: SecretStr | None = None
    """Bearer token of MLServer's model repository API (load/unload), which reloads the champion
    after a promotion in local mode. Unset: the API is closed to everyone (kind mode reloads by
    rolling the pods). `fraudlab up` makes one per state folder (`launchers.mlserver.admin_token`)."""

    def as_env(self) -> dict[str, str]:
        """The `FRAUD_*` environment that recreates these settings in a child process.

        Every set field becomes `FRAUD_<NAME>`; secrets (`SecretStr` fields such as the MLflow
        admin password) and unset (None) fields are left out: children that need a secret get it
        from the parent's environment, as containers get it from a Secret.

        Example:
            >>> Settings(http_port=9000).as_env()["FRAUD_HTTP_PORT"]
            '9000'
        """
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None or isinstance(value, SecretStr):
                continue
            env[f"FRAUD_{name.upper()}"] = (
                value.isoformat() if isinstance(value, dt.date) else str(value)
            )
        return env

    def mlflow_client_env(self) -> dict[str, str]:
        """MLflow's client credential for an MLflow with basic auth: `MLFLOW_TRACKING_USERNAME` and
        `MLFLOW_TRACKING_PASSWORD`, which MLflow's client reads from the environment on each call
        (`mlflow/utils/credentials.py` `read_mlflow_creds`). Empty when no admin password is set.

        Example:
            >>> Settings(mlflow_admin_password="pw").mlflow_client_env()["MLFLOW_TRACKING_USERNAME"]
            'admin'
        """
        if self.mlflow_admin_password is None:
            return {}
        return {
            "MLFLOW_TRACKING_USERNAME": self.mlflow_admin_username,
            "MLFLOW_TRACKING_PASSWORD": self.mlflow_admin_password.get_secret_value(),
        }

    def _under(self, name: str) -> str:
        return f"{self.data_dir.rstrip('/')}/{name}"

    # --- monitoring and continuous training -------------------------------------------------
    monitor_port: int = 8090
    """Port of the drift and performance exporter (`fraudlab monitor`), `/metrics`."""
    prometheus_port: int = 9090
    """Port of the local Prometheus (`fraudlab prometheus`)."""
    alertmanager_port: int = 9093
    """Port of the local Alertmanager started with `fraudlab prometheus`."""
    ct_port: int = 8095
    """Port of the continuous-training controller (`fraudlab ct-controller`), Alertmanager's webhook."""
    scrape_interval_s: float = Field(15.0, gt=0)
    """Local Prometheus scrape and rule evaluation interval, in seconds."""
    # --- lab 16: load test and right-sizing (reference_app/scaling) ---------------------------
    load_users: int = Field(20, gt=0)
    """Locust users at the top of the load test's ramp (`fraudlab load-test`; it starts with 1)."""
    load_user_rps: float = Field(5.0, gt=0)
    """Requests per second each user sends at most (Locust `constant_throughput`)."""
    load_ramp_s: float = Field(30.0, gt=0)
    """Seconds the ramp from 1 to `load_users` users takes."""
    load_duration_s: float = Field(60.0, gt=0)
    """Seconds the whole load test runs (ramp included)."""
    load_retries: int = Field(3, ge=0)
    """Client retries of a request on a connection error or a 503 (urllib3 Retry, with back-off)."""
    psi_alert_threshold: float = 0.25
    """PSI above which a feature counts as drifted: the monitor, the report and the FraudFeatureDrift
    rule (manifests/base/monitoring/prometheusrule.fraud-lab.yaml; tests/monitoring checks it equal)."""
    cp_floor: float = 0.2
    """Realised CP@k below this fires FraudCardPrecisionLow (tests/monitoring checks the rule equal)."""
    retrain_model: str = "random_forest"
    """Model type that continuous training trains."""
    serving_reload_url: str = ""
    """Model repository URL to reload after a promotion (local mode: MLServer's
    `/v2/repository/models/<name>/load`); empty → `inference_url`."""
    ct_mode: Literal["inline", "workflow"] = "inline"
    """How the controller retrains: "inline" (in its own process, local mode) or "workflow" (kind
    mode: it submits an Argo Workflow from the WorkflowTemplate `retrain`, and the retraining step
    rolls the SeldonDeployment through the Kubernetes API)."""
    ct_namespace: str = "fraud-lab"
    """Namespace of the retraining Workflows and the SeldonDeployment (kind mode)."""

    # --- the feature store (lab 04): Feast in .venv-feast ----------------------------------
    feast_bin: str = ".venv-feast/bin/feast"
    """The `feast` command of Feast's own environment (`make .venv-feast/.installed`): Feast's
    FastAPI/Starlette pins conflict with MLServer's, so it never shares the app's venv."""
    feature_server_port: int = 6566
    """Port of the local Feast feature server (`feast serve`; 6566 is Feast's default)."""
    feature_server_url: str = ""
    """Base URL of the Feast feature server the online serving path asks (`/get-online-features`);
    empty: the local one, on `feature_server_port` (read it through `feature_server_base_url`)."""

    # --- serving an LLM (lab 17, optional): fraudlab llm-probe ---------------------------------
    llm_url: str = "http://127.0.0.1:8000"
    """Base URL of the OpenAI-compatible LLM server `fraudlab llm-probe` measures (kind mode:
    `kubectl port-forward service/llm-server 8000:8000`; vLLM's and the component's port)."""
    llm_max_ttft_s: float = Field(5.0, gt=0)
    """The laptop budget for time to first token of the probe's short prompt, in s: the first
    words of an analyst's summary within 5 s on the CPU path (a GPU does it in well under 1 s)."""
    llm_min_tokens_per_s: float = Field(5.0, gt=0)
    """The laptop budget for decode throughput, in tokens/s: ≈ 5 tokens (≈ 3.75 English words)
    a second keeps up with silent reading (≈ 238 words a minute: Brysbaert, 2019, J. Memory and
    Language 109)."""

    # --- lab 14: hyper-parameter tuning with Ray Tune (training/tune.py) ----------------------
    tune_models: str = "lightgbm,mlp"
    """Model types `fraudlab tune` searches, comma-separated (`training.models.TUNED_MODEL_TYPES`)."""
    demo_tune_models: str = "lightgbm"
    """Model types `fraudlab demo` tunes after the untuned three; empty: the demo tunes nothing."""
    demo_tune_trials: int = Field(4, gt=0)
    """Trials per model in `fraudlab demo` (its small budget; `fraudlab tune` uses `tune_trials`)."""
    tune_trials: int = Field(8, gt=0)
    """Trials (sampled configurations) per model type."""
    tune_concurrency: int = Field(2, gt=0)
    """Trials that run at once (one CPU each): at most the Ray cluster's CPUs."""
    tune_folds: int = Field(4, gt=0)
    """Prequential validation folds (Fraud Detection Handbook, ch. 5.2: 4)."""
    tune_delta_assessment: int = Field(7, gt=0)
    """Days between two folds, and each fold's validation period (the handbook's delta_assessment)."""
    tune_time_budget_s: float = Field(900.0, gt=0)
    """Seconds a model type's search may take; trials still running then are stopped."""
    tune_asha_grace_period: int = Field(2, gt=0)
    """ASHA: steps (LightGBM blocks, MLP epochs) every trial runs before it may be stopped."""
    tune_asha_reduction_factor: int = Field(3, gt=1)
    """ASHA: 1 in this many trials continues at each rung (Li et al., 2020)."""
    tune_lightgbm_block_rounds: int = Field(25, gt=0)
    """LightGBM boosting rounds between two reports (one ASHA step)."""
    tune_lightgbm_max_rounds: int = Field(400, gt=0)
    """LightGBM boosting rounds of a trial that is never stopped early."""
    tune_mlp_max_epochs: int = Field(20, gt=0)
    """MLP epochs of a trial that is never stopped early (one ASHA step per epoch)."""
    tune_experiment: str = "fraud-tuning"
    """MLflow experiment of the tuning runs and their trials (nested runs)."""
    ray_address: str = ""
    """Ray cluster to tune on (e.g. `ray://head:10001`, `auto`); empty: `RAY_ADDRESS` when set
    (a KubeRay RayJob's driver has it), else a local Ray on 127.0.0.1."""
    ray_num_cpus: int = Field(2, gt=0)
    """CPUs of the local Ray started when there is no cluster to connect to."""

    # --- responsible AI and human review (lab 18) -------------------------------------------------
    review_band_low: float = Field(0.05, ge=0, le=1)
    """Scores from this value (inclusive) up to `review_band_high` are uncertain: the replay sends
    them to the human review queue (`responsible.review`)."""
    review_band_high: float = Field(0.5, ge=0, le=1)
    """Upper end (exclusive) of the uncertainty band; by default `flag_threshold`: flagged
    transactions are alerts already, the band is what the model almost flagged."""
    review_capacity: int = Field(25, ge=0)
    """Cases analysts review a day: at most this many go to the queue per scored day, highest
    score first (like the k of CP@k)."""
    review_database_uri: str = ""
    """The review queue's database; empty → the MLflow backend store (`mlflow_backend_store_uri`),
    else the local MLflow's SQLite file under `state_dir`. Kind: the PostgreSQL of MLflow."""
    review_schema: str = "review"
    """PostgreSQL schema of the queue's tables (SQLite has none: tables `review_*`)."""
    review_port: int = 8097
    """Port of the review page (`fraudlab review serve`)."""

    # --- the labs' exercises ----------------------------------------------------------------
    lab_code: str = ""
    """Folders (`:`-separated) with the learner's exercise modules (`labs/NN-*/starter`; on the
    cluster the ConfigMap mounted at /lab-code): each exercise's function stands in for the
    reference's (`labcode`); empty: the reference runs."""

    @property
    def feature_server_base_url(self) -> str:
        """The feature server's base URL, no trailing slash: `feature_server_url` when set (kind
        mode: the Service), else the local server `fraudlab up --features` starts,
        http://127.0.0.1:`feature_server_port`."""
        url = self.feature_server_url or f"http://127.0.0.1:{self.feature_server_port}"
        return url.rstrip("/")

    @property
    def raw_dir(self) -> str:
        """Simulated (or imported) transactions, one Parquet file per day."""
        return self._under("raw")

    @property
    def validated_dir(self) -> str:
        """Transactions that passed the data contract."""
        return self._under("validated")

    @property
    def quarantine_dir(self) -> str:
        """Transactions that failed the data contract, with the failed check per row."""
        return self._under("quarantine")

    @property
    def features_dir(self) -> str:
        """Transactions with the 15 model features."""
        return self._under("features")

    @property
    def reports_dir(self) -> str:
        """Replay results and HTML/JSON reports."""
        return self._under("reports")

    @property
    def state_dir(self) -> str:
        """Local-mode server state (MLflow SQLite store, artifacts, logs)."""
        return self._under("state")
