"""What a scan leaves in the Prefect UI: the markdown report and its score histogram."""

from __future__ import annotations

from tasks.anomaly.report import scan_report, score_histogram
from tasks.anomaly.scoring import Calibration, ClipScore


def _score(path: str, score: float, anomalous: bool) -> ClipScore:
    return ClipScore(path, path, "pump-07", score, 0.3, anomalous, 4.0, ["normal/n1.wav"])


def test_histogram_counts_every_score_and_marks_the_threshold() -> None:
    text = score_histogram([0.1, 0.12, 0.5, 0.9], [0.3], bins=4)
    lines = text.splitlines()
    assert len(lines) == 4
    assert (
        sum(int(line.split()[-1] if "<-" not in line else line.split()[-3]) for line in lines) == 4
    )
    assert sum("<- threshold" in line for line in lines) == 1
    assert score_histogram([], [0.3]) == "(no clips scored)"


def test_report_lists_silent_clips_and_anomalies_worst_first_with_location_and_unscored() -> None:
    calibration = Calibration("pump-07", 0.3, "gamma", 0.99, 3, 8, 72, "f")
    scores = [_score("a.wav", 0.5, True), _score("b.wav", 0.1, False), _score("c.wav", 0.9, True)]
    scores.append(ClipScore.of_silent_clip("e.wav", "e.wav", "pump-07", 0.3))
    report = scan_report(scores, {"pump-07": calibration}, 4, 1, ["d.wav: not audio"])
    assert (
        "3 clips scored, **2 anomalous**, **1 silent**, 1 not scored, 1 without a reference group"
        in report
    )
    assert "| e.wav | pump-07 |" in report.split("## Silent clips")[1].split("##")[0]
    top = report.split("## Top anomalies")[1].split("##")[0]
    anomalies = [line for line in top.splitlines() if line.startswith("| ") and ".wav |" in line]
    assert [line.split("|")[1].strip() for line in anomalies] == ["c.wav", "a.wav"]
    assert "| 4.0 |" in anomalies[0]
    assert "- d.wav: not audio" in report
