"""Fuzzing the inputs (bench/input_fuzz.py has the mutations and the runner): 1,100 hypothesis-generated cases per
run, derandomized so CI is repeatable, over mutated model archives (graph.json fields, .npy headers, zip
structure, bytes) and mutated target files. For every case: only an IntonlyError may escape, the case ends within
CASE_SECONDS and CASE_BYTES of memory, and nothing outside ``out/`` changes in its working folder.

A longer random campaign: ``python -m bench.input_fuzz --cases 20000 --seed 1`` (bench/README.md)."""

import pytest
from bench_modules import bench_module
from hypothesis import HealthCheck, given, settings

input_fuzz = bench_module("input_fuzz")

ARCHIVE_CASES = 800
TARGET_CASES = 300
CASE_SECONDS = 30          # a hang guard for slow CI machines, not a speed target (cases take 0.01-7 s)
CASE_BYTES = 1 << 30       # peak memory above the case's start (a refusal of a 1 GiB declaration needs ~0)


def fuzz(cases: int) -> settings:
    return settings(max_examples=cases, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def seeds(sandbox):
    seeds = input_fuzz.Seeds.build()
    seeds.warm_up(sandbox)   # Numba's first compile (a cold cache on a clean clone) belongs to no case
    return seeds


@pytest.fixture(scope="module")
def seed_model(seeds, sandbox):
    from intonly.quantize.ir import IntModel

    path = sandbox.parent / "seed.intonly"
    path.write_bytes(seeds.archives["digits"])
    return IntModel.load(path)


def check(result: input_fuzz.CaseResult) -> None:
    assert result.finding is None, f"{result.label}: {result.finding}"
    assert result.wrote_outside == [], f"{result.label} changed {result.wrote_outside} outside out/"
    assert result.seconds < CASE_SECONDS, f"{result.label} took {result.seconds:.1f} s"
    assert result.peak_bytes < CASE_BYTES, f"{result.label} needed {result.peak_bytes:,} bytes"


def test_archive_mutations(seeds, sandbox):
    outcomes = []

    @fuzz(ARCHIVE_CASES)
    @given(case=input_fuzz.archive_cases(seeds))
    def one(case):
        result = input_fuzz.run_archive_case(*case, sandbox)
        check(result)
        outcomes.append(result.outcome)

    one()
    # the mutations reach past the loader: some cases stay valid models (and are simulated and estimated)
    assert len(outcomes) >= ARCHIVE_CASES // 2 and outcomes.count("ok") >= 20
    assert {"ModelFileError"} <= set(outcomes)


def test_target_file_mutations(seeds, sandbox, seed_model):
    outcomes = []

    @fuzz(TARGET_CASES)
    @given(case=input_fuzz.target_cases(seeds))
    def one(case):
        result = input_fuzz.run_target_case(*case, sandbox, seed_model)
        check(result)
        outcomes.append(result.outcome)

    one()
    assert len(outcomes) >= TARGET_CASES // 2 and outcomes.count("ok") >= 10 and "TargetError" in outcomes
