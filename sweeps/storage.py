"""The storage contract: where a sweep lives and the names of the files in its folder.

    STORAGE/NAME/                      the experiment folder (local path or object-store URI)
        segsweep.json                  SWEEP_FILE: how the sweep was started (settings, grid, data)
        data_files.json                DATA_FILES: its dataset's files (split -> path -> size,
                                       time): resume and the report see a changed dataset
        inference_cpu.json             INFERENCE_FILE: CPU timings taken after the sweep
        inference_gpu.json             INFERENCE_GPU_FILE: GPU timings, when trials used GPUs
        optuna.db                      STUDY_FILE: the Optuna study (--search optuna)
        costs.json                     COSTS_FILE: each searchable architecture's costs,
                                       measured once before training, and why one over a
                                       budget was rejected (--objective / --max-*)
        mlflow.db                      MLFLOW_FILE: MLflow's store (--tracker mlflow)
        experiment_state-*.json        Ray Tune's saved state (read through sweeps.ray_state)
        TRIAL/params.json              PARAMS_FILE: Tune's config of the trial (point + searched)
        TRIAL/result.json              RESULT_FILE: one JSON line per reported epoch
        TRIAL/error.txt                ERROR_FILE: why the trial failed
        TRIAL/events.out.tfevents.*    TensorBoard: curves and HParams (tensorboard/: images)
        TRIAL/checkpoint_NNNNNN/       CHECKPOINT_PREFIX: checkpoint.pt + META_FILE +
                                       IMAGE_CONFUSIONS_FILE (per-image validation counts)
        export/NAME/                   EXPORT_DIR: a trial exported (``python -m deploy``):
                                       model.onnx, MODEL_FILE (model.json), MODEL_CARD.md

Writers (the runner, the trainable) and readers (resume repair, the loader, the CLI summary)
all take the names from here.
"""

from __future__ import annotations

import re

from segmodels.training import CHECKPOINT_FILE, IMAGE_CONFUSIONS_FILE

DEFAULT_STORAGE = "./runs"
SWEEP_FILE = "segsweep.json"
DATA_FILES = "data_files.json"
INFERENCE_FILE = "inference_cpu.json"
INFERENCE_GPU_FILE = "inference_gpu.json"  # GPU timings after the sweep (when trials used GPUs)
COSTS_FILE = "costs.json"  # label -> {objective: figure, "rejected": reason or None}
STUDY_FILE = "optuna.db"  # SQLite: under the user's cache instead when storage is remote
MLFLOW_FILE = "mlflow.db"  # the same
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
META_FILE = "meta.json"  # in each checkpoint folder: its epoch, val mIoU and reported row
CHECKPOINT_PREFIX = "checkpoint_"
EXPORT_DIR = "export"
MODEL_FILE = "model.json"  # an export's description, what a deployment reads

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_PREFIX", "COSTS_FILE", "DATA_FILES", "DEFAULT_STORAGE",
           "ERROR_FILE", "EXPORT_DIR", "IMAGE_CONFUSIONS_FILE", "INFERENCE_FILE",
           "INFERENCE_GPU_FILE", "META_FILE", "MLFLOW_FILE", "MODEL_FILE", "PARAMS_FILE",
           "RESULT_FILE", "STUDY_FILE", "SWEEP_FILE", "is_remote_storage"]


def is_remote_storage(storage: str) -> bool:
    """True for object storage (``s3://``, ``gs://``, any ``scheme://``); a plain path and
    ``file://`` (any case) are a folder on the node's own disk."""
    return bool(_URI.match(storage)) and not storage.lower().startswith("file://")
