"""On PYTHONPATH, makes ``import torch`` (and Lightning, torchvision, Ray) fail, as on a
deployment that installed only numpy, Pillow and onnxruntime: tests/segsweep_predict runs the
predictor so."""

import sys

_ABSENT = ("torch", "torchvision", "lightning", "pytorch_lightning", "ray")


class _NoTrainingStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _ABSENT:
            raise ImportError(f"import {name}: not installed on this deployment "
                              "(tests/no_torch)")
        return None


sys.meta_path.insert(0, _NoTrainingStack())
