"""The stored schema: every name this package writes into an Optuna study or the curve table.

Users read these with plain Optuna (`study.user_attrs`, `trial.user_attrs`); docs/schema.md says
what each holds and its units. Code reads and writes them only through these names.
"""

from __future__ import annotations

# Study user attributes.
STUDY_ATTR_SETTINGS = "search_settings"  # bench.search.settings.SearchSettings.record()
STUDY_ATTR_SPACE = "search_space"  # bench.search.spaces.SearchSpace.describe()
STUDY_ATTR_CONFIRM = "confirm_of"  # on a <study>-confirm study: the study it confirms
STUDY_ATTR_RACE = "race"  # on a confirm study: {"seeds", "max_seeds"}, the looks its race plans
STUDY_ATTR_COMPARE = "compare"  # on a compare study: its group, sampler, pruner, seed, table cover

# Trial user attributes written by the search (bench.search.objective) and confirm.
ATTR_CONFIG = "config"  # dataclasses.asdict(CNNConfig)
ATTR_TRAIN_SETTINGS = "train_settings"  # dataclasses.asdict(TrainSettings)
ATTR_LEARNING_CURVE = "learning_curve"  # list of dataclasses.asdict(EpochRecord)
ATTR_FIDELITY = "fidelity"  # bench.store.identity.Fidelity.record(): what the value was measured at
ATTR_SEED = "seed"  # the training seed of the curve behind the value (drawn, when replayed)
ATTR_WEIGHTS = "weights"  # artifact id of the kept weights (bench.store.artifacts)
ATTR_INVALID_REASON = "invalid_reason"  # set on trials pruned because the config collapses
ATTR_END_REASON = "end_reason"  # why a trial was pruned, failed or interrupted
ATTR_REPLAYED = "replayed"  # True: answered from the curve table, not trained
ATTR_REPLAYED_FROM = "replayed_from"  # the "study#trial" that measured the replayed curve
ATTR_FULL_SECONDS = "full_seconds"  # replayed: recorded training seconds of the whole curve
ATTR_SECONDS = "seconds"  # wall seconds of the trial, training, evaluation and measuring
ATTR_EPOCHS_TRAINED = "epochs_trained"  # epochs (fractional) trained before the trial ended
ATTR_TRAIN_IMAGES_PER_SECOND = "train_images_per_second"  # training throughput over the curve
ATTR_WORKER = "worker"  # "host:pid" of the process running the trial (its weights are there)
ATTR_WORKER_PROCESS = "worker_process"  # boot, pid namespace and start time of that process
ATTR_DRAWN_AT_RANDOM = "drawn_at_random"  # compare: a designed point enqueued at random (why)
ATTR_CONFIRM_ROLE = "confirm_role"  # confirm: "top" (one of the top K) or "sweep" (a neighbour)
# Per trained trial, the network's size and speed: the fields of mnist_cnn.metrics.ModelMetrics.
ATTR_PARAMETERS = "parameters"
ATTR_FLOPS_PER_IMAGE = "flops_per_image"
ATTR_LATENCY_MS_BATCH1 = "latency_ms_batch1"  # completed trials only: the median of the calls
ATTR_LATENCY_MS_BATCH1_Q1 = "latency_ms_batch1_q1"  # its quartiles, the spread of the calls
ATTR_LATENCY_MS_BATCH1_Q3 = "latency_ms_batch1_q3"
ATTR_LATENCY_CALLS = "latency_calls"  # how many timed calls the median is over
ATTR_INFERENCE_IMAGES_PER_SECOND = "inference_images_per_second"  # completed trials only
# Which seeds are held out is a study's fact, not a trial's: a search's (or compare's, grid's)
# trials selected configs; a confirm study's (STUDY_ATTR_CONFIRM) are held out
# (bench.evidence.measurements.is_search).

# One state per trial, as a frame of trials holds it (bench.report.load reads them, the benchmark
# scores them): Optuna's state, with invalid configs split out. Read, never written to a study.
STATE_COMPLETE, STATE_PRUNED, STATE_INVALID, STATE_FAILED, STATE_RUNNING = (
    "complete", "pruned", "invalid", "failed", "running",
)

# The curve table (bench.store.curves): one row per (config, fidelity, seed).
CURVES_SQL = """
CREATE TABLE IF NOT EXISTS curves (
    key TEXT PRIMARY KEY,        -- sha256 of config key, fidelity key and seed (store.identity)
    config_key TEXT NOT NULL,    -- sha256 of config key and fidelity key: one config's seeds
    seed INTEGER NOT NULL,       -- the training seed (weights, data order)
    config TEXT NOT NULL,        -- JSON of dataclasses.asdict(CNNConfig)
    fidelity TEXT NOT NULL,      -- JSON of Fidelity (no seed)
    curve TEXT NOT NULL,         -- JSON list of dataclasses.asdict(EpochRecord)
    complete INTEGER NOT NULL,   -- 1 when the curve has every planned evaluation
    measurements TEXT NOT NULL,  -- JSON: parameters, FLOPs, speed (complete curves)
    source TEXT NOT NULL,        -- study and trial that measured it
    host TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    threads INTEGER              -- torch's intra-op threads when measured (context, not key)
);
CREATE INDEX IF NOT EXISTS curves_config_key ON curves (config_key);
"""
# The layout's version; bench.store.legacy moves a table of an older one to it once, on opening.
CURVES_SCHEMA_VERSION = 4
