"""On PYTHONPATH, makes ``import ray`` fail, as on the GPU machines benchmarks run on (their
Python has no Ray): tests/bench/test_bench.py runs the GPU benchmarks so, which keeps them
Ray-free."""

import sys


class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"import {name}: no Ray on the GPU machine (tests/no_ray)")
        return None


sys.meta_path.insert(0, _NoRay())
