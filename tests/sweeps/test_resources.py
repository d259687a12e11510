"""sweeps.resources: when trials share a process."""

import pytest

from sweeps.resources import concurrent_slots, reuse_trial_actors

CPU_ONLY = {"CPU": 2.0}
GPUS = {"CPU": 16.0, "GPU": 2.0}


def test_slots_are_what_the_scarcest_resource_allows():
    assert concurrent_slots({"cpu": 1.0, "gpu": 0.0}, CPU_ONLY) == 2
    assert concurrent_slots({"cpu": 4.0, "gpu": 1.0}, GPUS) == 2
    assert concurrent_slots({"cpu": 2.0, "gpu": 0.5}, GPUS) == 4  # two small models per GPU
    assert concurrent_slots({"cpu": 4.0, "gpu": 0.0}, CPU_ONLY) == 1  # never zero


def test_trial_processes_are_reused_only_when_a_slot_runs_several_trials():
    one_cpu = {"cpu": 1.0, "gpu": 0.0}
    assert reuse_trial_actors(6, one_cpu, CPU_ONLY)  # the homework grid on 2 cores
    assert not reuse_trial_actors(2, one_cpu, CPU_ONLY)  # one trial per slot: nothing to save


def test_an_address_where_no_cluster_answers_is_one_clear_error(monkeypatch):
    import ray

    from sweeps.resources import start_ray
    from sweeps.settings import SweepError, SweepSettings

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance")

    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(SweepError, match="--address 10.0.0.9:6379: no Ray cluster answers"):
        start_ray(SweepSettings(address="10.0.0.9:6379"))
