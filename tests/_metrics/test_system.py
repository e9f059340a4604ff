from __future__ import annotations

from pathlib import Path

from callwatch._metrics.system import SystemSampler, cgroup_memory

KEYS = {"cpu_percent", "memory_percent", "disk_percent", "memory_available_mb", "disk_free_gb",
        "process_memory_mb", "open_files"}


def test_sample_has_the_guide_keys_and_sane_values(tmp_path: Path) -> None:
    sample = SystemSampler(tmp_path / "not" / "yet").latest()
    assert set(sample) >= KEYS
    for key in ("cpu_percent", "memory_percent", "disk_percent"):
        assert 0.0 <= sample[key] <= 100.0
    assert sample["process_memory_mb"] > 1 and sample["open_files"] > 0


def test_samples_are_cached_until_they_age() -> None:
    sampler = SystemSampler()
    first = sampler.latest()
    assert sampler.latest() is first
    assert sampler.latest(max_age=0.0) is not first


def test_first_cpu_reading_covers_a_real_interval() -> None:
    sampler = SystemSampler()
    primed_at = sampler._cpu_at
    sampler.latest()
    assert sampler._cpu_at - primed_at >= 0.05  # not psutil's meaningless first 0.0


def _v1(root: Path, limit: int, usage: int, inactive: int) -> Path:
    memory = root / "memory"
    memory.mkdir(parents=True)
    (memory / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (memory / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (memory / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {inactive}\n")
    return root


def test_cgroup_v1_limit_is_used_without_reclaimable_cache(tmp_path: Path) -> None:
    root = _v1(tmp_path, limit=1000, usage=600, inactive=100)
    assert cgroup_memory(root) == (500, 1000)


def test_unlimited_cgroup_means_the_host_figures(tmp_path: Path) -> None:
    root = _v1(tmp_path, limit=9223372036854771712, usage=600, inactive=0)
    assert cgroup_memory(root) is None


def test_a_forked_child_starts_sampling_with_a_lock_of_its_own() -> None:
    """The parent's sampling thread may hold the lock at the fork; no thread of the child
    would ever release it, and monitoring's start must not wait for it."""
    sampler = SystemSampler()
    sampler.refresh()
    inherited = sampler._lock  # what a fork copies: held by a thread the child does not have
    inherited.acquire()
    sampler.prime()  # component start in the child
    assert sampler.latest(max_age=0.0)["cpu_count"] >= 1
