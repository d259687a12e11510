"""Run a model exported by ``segsweep export`` with numpy, Pillow and onnxruntime only: no
torch, no Lightning, no Ray, nothing of segsweep's training stack (this package imports none
of segsweep's other packages).

    from segsweep_predict import Predictor
    predictor = Predictor("runs/homework/export/unet_aug")
    classes = predictor.predict(read_image("photo.jpg"))   # (H, W) class ids

or, from a shell: ``python -m segsweep_predict MODEL_DIR IMAGES... --out DIR``.
"""

from segsweep_predict.images import ImageError, read_image
from segsweep_predict.predictor import ModelError, Predictor, overlay

__all__ = ["ImageError", "ModelError", "Predictor", "overlay", "read_image"]
