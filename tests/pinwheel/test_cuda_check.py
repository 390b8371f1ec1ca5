"""bench/cuda_check.py fails loudly: a non-finite model is a non-zero exit, and the JSON report is written anyway."""
from __future__ import annotations

import json

import torch

from bench import cuda_check
from pinwheel.models.group_sparse import GroupSparseAE


def test_cuda_check_passes_and_reports_what_it_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_check, "OUT", tmp_path / "cuda_check.json")
    assert cuda_check.main(["--seconds", "0.2", "--only", "groups-1d-blocks", "--resume"]) == 0
    report = json.loads((tmp_path / "cuda_check.json").read_text())
    assert report["failures"] == [] and report["steps"][0]["steps_per_s"] > 0
    if not torch.cuda.is_available():
        assert report["sync"][0]["device"] == "meta" and any("no CUDA device" in s for s in report["skipped"])


def test_non_finite_weights_fail_the_check_and_the_report_is_still_written(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_check, "OUT", tmp_path / "cuda_check.json")

    def poison(self):
        with torch.no_grad():
            self.W_d.fill_(float("nan"))

    monkeypatch.setattr(GroupSparseAE, "project_", poison)
    assert cuda_check.main(["--seconds", "0.2", "--only", "groups-1d-blocks", "--resume"]) == 1
    report = json.loads((tmp_path / "cuda_check.json").read_text())
    assert any("non-finite" in f for f in report["failures"])
