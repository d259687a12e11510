"""The deploy wing: the winner of a sweep leaves it as a checked, deployable model.

- ``formats``: the export formats (ONNX, TorchScript), the module they export (raw RGB pixels
  in, logits out: the normalization every model trained with is inside) and how each runs.
- ``check``: the exported model against PyTorch on the sweep's validation images.
- ``latency``: the exported model's and eager PyTorch's time per frame, side by side.
- ``model_card``: ``model.json`` (what a deployment reads) and ``MODEL_CARD.md``.
- ``result``: ``ExportResult``, what an export made.
- ``export``: ``export_run``, the whole step from a sweep folder; ``python -m deploy`` and
  ``segsweep export`` are its command line.

The predictor that runs an export needs none of this (``segsweep_predict``: numpy, Pillow and
onnxruntime only). Imports: segmodels, sweeps, analysis; nothing imports deploy but the CLI.
"""

from deploy.export import ExportCheckFailed, ExportError, export_run
from deploy.formats import FORMATS
from deploy.result import ExportResult

__all__ = ["FORMATS", "ExportCheckFailed", "ExportError", "ExportResult", "export_run"]
