import csv

import pytest

from snn_msi.reports.study import StudyConfig, run_study, t_interval

TINY = {"model": {"num_classes": 10, "widths": [4], "blocks": [1], "stem": "small", "stem_stride": 2,
                  "audio_channels": 1, "visual_channels": 1, "T": 2}, "batch_size": 16}  # fmt: skip


def test_t_interval():
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / 3**0.5, rel=1e-5) and hi == pytest.approx(4 - lo)


def test_tiny_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    import snn_msi.reports.study as study

    monkeypatch.setattr(study, "demo_config", _tiny_demo_config(study.demo_config))
    cfg = StudyConfig(levels=[(0.0, 10.0), (-15.0, -5.0)], seeds=2, epochs=1, jobs=1, out=str(tmp_path), base=TINY)
    summary = run_study(cfg)
    assert {r["method"] for r in summary} == {"normal", "iemf", "constant", "noise"}
    assert len(summary) == 8 and all(r["n"] == 2 for r in summary)
    iemf = {(r["audio_snr_db"]): r["coeff_mean"] for r in summary if r["method"] == "iemf"}
    const = {(r["audio_snr_db"]): r["coeff_mean"] for r in summary if r["method"] == "constant"}
    assert iemf == pytest.approx(const)  # the control uses IEMF's mean coefficient at each level
    with (tmp_path / "runs.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 16
    for f in ("summary.csv", "summary.md", "inverse_effectiveness.png"):
        assert (tmp_path / f).is_file()
    md = (tmp_path / "summary.md").read_text()
    assert "| -15 | -5 | constant |" in md
    mtime = (tmp_path / "a+0_v+10" / "normal_s0" / "results.json").stat().st_mtime
    run_study(cfg)  # resumes: nothing is trained again
    assert (tmp_path / "a+0_v+10" / "normal_s0" / "results.json").stat().st_mtime == mtime
    changed = StudyConfig(**{**cfg.__dict__, "epochs": 2})
    with pytest.raises(ValueError, match="another config.*epochs: 1 -> 2"):
        run_study(changed)  # a cached run is only reused with the same config


def _tiny_demo_config(orig):
    def make(**over):
        over["data"] = {**over.get("data", {}), "limit": 32}
        return orig(**over)

    return make
