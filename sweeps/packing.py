"""How many trials share one GPU under ``--gpus-per-trial auto``: each architecture's GPU share,
and the CPUs that follow it.

Why share: a small model cannot keep a modern GPU busy; its step is a string of short kernels,
each waiting for the CPU to launch it (launch-bound), so a second process fills the gaps.
Ray's fractional GPUs only schedule (they do not limit memory): each trial with a share below
one caps its own GPU memory to the share (``segmodels.training.trial``), so an out-of-memory
fails the trial that caused it, not its neighbour.

The rule: a trial gets 1/k of a GPU, where k is the fewest trials per GPU whose summed training
images/s comes within ``TOLERANCE`` (10%) of the best packing measured for its architecture.
Fewer trials per GPU, when they lose little, mean that each trial finishes sooner, holds
more CPUs and memory, and reports its epochs sooner (ASHA decides sooner).

Measured (``MEASURED``; dated in bench/README.md): one H200, bare training loop, bf16 AMP,
channels_last, batch 16, crop 256, 0.6-0.8 GB of GPU memory per process; summed images/s of
1, 2 and 4 processes:

- DeepLab-MobileNetV3-small-ASPP: 724 / 1,366 / 1,463: two trials per GPU (two are 93% of four).
- DeepLab-ResNet18-ASPP: 1,436 / 1,592 (four not measured): a whole GPU, at the edge (alone is
  90.2% of two; a re-measurement below 90% would make it share).

Judgements (``JUDGED``): no sharing figures, reasoned from the bare-loop table in
bench/README.md (H200, images/s fp32 / fp32 channels_last / bf16 channels_last). A model that
mixed precision speeds up much is compute-bound (its GPU is busy), one it does not speed up is
launch-bound:

- UNet (560 / 1,011 / 1,400: 2.5x) and DeepLab-VGG11-bn with and without ASPP (860 / 1,102 /
  1,324: 1.5x): a whole GPU.
- DeepLab-ResNet18 without ASPP (1,546 / 1,866 / 1,981: 1.28x, more compute-bound than
  ResNet18-ASPP's 1.21x, which already keeps a whole GPU): a whole GPU.
- DeepLab-MobileNetV3-small without ASPP: half a GPU, like its ASPP variant (964 / 1,055 / 759:
  mixed precision gains nothing on its depthwise convolutions).
- smp models and anything else: a whole GPU; their encoders (ResNet34 up, MiT) are larger than
  anything measured.

The sharing figures were measured in bf16, but MobileNetV3-ASPP now trains in fp32 on a GPU
(``segmodels.training.FP32_ON_GPU``). ``python bench/gpu.py --packing`` re-measures 1, 2 and
4 trials per GPU with each architecture's own precision and prints this rule's share beside the
best measured packing.

CPUs follow the same share of the node (a half-GPU trial on a node of 16 CPUs and 2 GPUs gets
4), at least one: a launch-bound trial needs a core of its own to launch kernels, so on a node
with fewer CPUs than shares the CPUs limit how many trials share a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

from segmodels.training import TrialConfig

TOLERANCE = 0.10  # a packing within 10% of the best measured is as good: fewer trials per GPU
WHOLE_GPU = 1.0

# Architecture label -> summed training images/s of k processes sharing one H200
# (bench/README.md, GPU packing).
MEASURED: dict[str, dict[int, float]] = {
    "deeplab/mobilenet_v3_small/aspp": {1: 724.0, 2: 1366.0, 4: 1463.0},
    "deeplab/resnet18/aspp": {1: 1436.0, 2: 1592.0},
}
# Architecture label -> GPU share without sharing figures (module docstring: why each).
JUDGED: dict[str, float] = {
    "unet": WHOLE_GPU,
    "deeplab/resnet18/no-aspp": WHOLE_GPU,
    "deeplab/vgg11_bn/aspp": WHOLE_GPU,
    "deeplab/vgg11_bn/no-aspp": WHOLE_GPU,
    "deeplab/mobilenet_v3_small/no-aspp": 0.5,
}


def share_from_rates(rates: Mapping[int, float]) -> float:
    """The rule on figures: 1/k for the fewest trials per GPU ``k`` whose summed images/s
    (``rates[k]``) is within TOLERANCE of the best."""
    best = max(rates.values())
    return 1.0 / min(k for k, rate in rates.items() if rate >= (1 - TOLERANCE) * best)


GPU_SHARES: dict[str, float] = {
    **JUDGED, **{label: share_from_rates(rates) for label, rates in MEASURED.items()}}


def gpu_share(cfg: TrialConfig) -> float:
    """The GPU share of a trial of this configuration's architecture."""
    return GPU_SHARES.get(cfg.architecture, WHOLE_GPU)


def cpus_for_share(share: float, node_cpus: float, node_gpus: float) -> float:
    """The node's CPUs in the same share as its GPUs, whole, at least one."""
    return max(1.0, float(int(node_cpus * share / node_gpus)))


def trial_resources(cfg: TrialConfig, node_cpus: float, node_gpus: float) -> dict[str, float]:
    """A trial's Ray request on a node with GPUs: its architecture's GPU share and the CPUs
    that follow it."""
    share = gpu_share(cfg)
    return {"cpu": cpus_for_share(share, node_cpus, node_gpus), "gpu": share}
