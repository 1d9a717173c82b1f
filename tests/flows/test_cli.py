"""The audio-embeddings command, in-process, on the Prefect test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import app
from tests.flows.cli_runner import QuietCliRunner

pytestmark = pytest.mark.usefixtures("prefect_server")
runner = QuietCliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _cell(output: str, row_name: str) -> str:
    """The value column of a two-column rich table row."""
    line = next(line for line in output.splitlines() if f"│ {row_name} " in line)
    return line.split("│")[2].strip()


def test_ingest_and_search_print_readable_tables(catalogue: Path, checkpoint: Path) -> None:
    ingested = runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    assert ingested.exit_code == 0, ingested.output
    assert _cell(ingested.output, "embedded") == "5"
    assert _cell(ingested.output, "snapshot version") == "1"
    # the terminal bar ends with every file embedded and committed
    bar = next(line for line in ingested.output.splitlines() if line.startswith("embedding"))
    assert "5/5" in bar and "5 committed in 1 version(s)" in bar
    found = runner.invoke(
        app,
        [
            "search",
            str(catalogue / "tones/a220.flac"),
            "--top",
            "2",
            "--checkpoint",
            str(checkpoint),
        ],
    )
    assert found.exit_code == 0, found.output
    lines = [line for line in found.output.splitlines() if "tones/a220.flac" in line]
    assert lines and lines[0].split("│")[1].strip() == "1"  # itself, ranked first


def test_search_filters_by_tag_and_keeps_the_old_option_for_a_release(
    catalogue: Path, checkpoint: Path
) -> None:
    from tasks.settings import Settings
    from tasks.storage.snapshots import TAGS_COLUMN, read_snapshot

    runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    rows = read_snapshot(Settings().resolved_snapshot_uri(), columns=["path", TAGS_COLUMN])
    tag = rows[TAGS_COLUMN].iloc[0][0]
    tagged = {p for p, tags in zip(rows["path"], rows[TAGS_COLUMN], strict=True) if tag in tags}
    query = ["search", "tones/a220.flac", "--top", "10", "--checkpoint", str(checkpoint)]

    def paths(output: str) -> set[str]:
        return {p for p in rows["path"] if f" {p} " in output}

    new = runner.invoke(app, [*query, "--tag", tag])
    assert new.exit_code == 0, new.output
    assert paths(new.output) == tagged and "deprecated" not in new.output
    old = runner.invoke(app, [*query, "--label", tag])
    assert old.exit_code == 0, old.output
    assert paths(old.output) == tagged
    assert "--label is deprecated: use --tag" in old.output


def test_missing_checkpoint_is_a_clear_error_not_a_traceback(catalogue: Path) -> None:
    result = runner.invoke(app, ["ingest", str(catalogue)])
    assert result.exit_code == 2
    assert "No Cnn14 checkpoint found" in result.output
    assert "make-random-checkpoint" in result.output
    assert "Traceback" not in result.output


def test_unreadable_query_is_a_clear_error(tmp_path: Path, checkpoint: Path) -> None:
    query = tmp_path / "query.wav"
    query.write_text("not audio")
    result = runner.invoke(app, ["search", str(query), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 2
    assert "query.wav" in result.output and "not a readable audio file" in result.output


def test_make_samples_writes_the_demo_catalogue(tmp_path: Path) -> None:
    result = runner.invoke(app, ["make-samples", str(tmp_path / "s")])
    assert result.exit_code == 0
    assert len(list((tmp_path / "s").rglob("*.*"))) == 10


def test_anomaly_evaluate_reports_auc_and_precision(tmp_path: Path, checkpoint: Path) -> None:
    from tasks.audio import samples

    for i in range(4):
        samples.write(tmp_path / f"ref/r{i}.wav", samples.engine(3.0, 16_000, 1500.0, i), 16_000)
    for i in range(2):
        samples.write(
            tmp_path / f"ok/n{i}.wav", samples.engine(3.0, 16_000, 1500.0, 10 + i), 16_000
        )
        samples.write(tmp_path / f"bad/a{i}.wav", samples.chirp(3.0, 16_000), 16_000)
    result = runner.invoke(
        app,
        [
            "anomaly",
            "evaluate",
            str(tmp_path / "ref"),
            str(tmp_path / "ok"),
            str(tmp_path / "bad"),
            "--checkpoint",
            str(checkpoint),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    by_score = {row[0]: row[1:] for row in rows if row and row[0] in ("knn", "mahalanobis")}
    # a chirp is nothing like an engine: both scores separate them perfectly
    assert by_score["knn"][:2] == ["all", "1.000"], result.output
    assert by_score["mahalanobis"][:2] == ["all", "1.000"], result.output
    assert by_score["knn"][-2:] == ["2", "2"]  # normal and anomalous clips


def test_ingest_names_each_quarantined_file_and_goes_on(catalogue: Path, checkpoint: Path) -> None:
    (catalogue / "broken.wav").write_bytes(b"RIFF not really")
    result = runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert _cell(result.output, "embedded") == "5" and _cell(result.output, "quarantined") == "1"
    after_the_table = result.output.rsplit("┘", 1)[1].replace("\n", "")
    assert after_the_table.strip().startswith("quarantined")
    assert "broken.wav: not a readable audio file" in after_the_table


def test_duplicates_groups_copies_and_lists_the_most_isolated(
    catalogue: Path, checkpoint: Path
) -> None:
    import shutil

    import soundfile

    shutil.copy(catalogue / "tones/a440.wav", catalogue / "tones/a440-copy.wav")
    samples, rate = soundfile.read(catalogue / "tones/a440.wav")
    (catalogue / "again").mkdir()
    soundfile.write(catalogue / "again/a440.flac", samples, rate)  # lossless: the same sound
    ingested = runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    assert ingested.exit_code == 0, ingested.output
    # random weights make every file alike (cosine ~0.98): only true copies pass 0.9999
    found = runner.invoke(app, ["duplicates", "--threshold", "0.9999", "--isolated", "2"])
    assert found.exit_code == 0, found.output
    title = " ".join(found.output.split())
    assert "1 groups of near-duplicates among 7 files (cosine >= 0.9999)" in title
    group = found.output.split("Most isolated files")[0]
    paths = {word for word in group.split() if word.endswith((".wav", ".flac", ".ogg", ".mp3"))}
    assert paths == {"tones/a440.wav", "tones/a440-copy.wav", "again/a440.flac"}
    isolated = found.output.split("Most isolated files")[1]
    listed = [line for line in isolated.splitlines() if "│" in line and "/" in line]
    assert len(listed) == 2  # --isolated 2


def test_labels_add_remove_and_history_from_the_command_line(
    catalogue: Path, checkpoint: Path
) -> None:
    runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    added = runner.invoke(
        app, ["labels", "add", "kind", "tonal", "tones/a440.wav", "tones/a220.flac", "--by", "ann"]
    )
    assert added.exit_code == 0, added.output
    assert "2 labelled, 0 taken out by ann; table version" in added.output
    refused = runner.invoke(app, ["labels", "add", "kind", "noise", "tones/a440.wav"])
    assert refused.exit_code == 2
    assert "tones/a440.wav is labelled 'tonal' in kind" in refused.output
    unknown = runner.invoke(app, ["labels", "add", "kind", "x", "nowhere/x.wav"])
    assert unknown.exit_code == 2 and "'nowhere/x.wav' is not in the catalogue" in unknown.output
    removed = runner.invoke(app, ["labels", "remove", "kind", "tones/a220.flac", "--by", "ben"])
    assert removed.exit_code == 0 and "0 labelled, 1 taken out by ben" in removed.output
    history = runner.invoke(app, ["labels", "history", "kind"])
    assert history.exit_code == 0, history.output
    rows = [
        line
        for line in history.output.splitlines()
        if "│" in line and ("ann" in line or "ben" in line)
    ]
    assert [("ben" in r, "ann" in r) for r in rows] == [(True, False), (False, True)]


def test_search_like_these_unlike_those_from_the_command_line(
    catalogue: Path, checkpoint: Path
) -> None:
    runner.invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    found = runner.invoke(
        app,
        ["search", "--like", "tones/a440.wav", "--like", "tones/a220.flac",
         "--unlike", "noise/white.ogg", "--checkpoint", str(checkpoint)],
    )  # fmt: skip
    assert found.exit_code == 0, found.output
    rows = "\n".join(line for line in found.output.splitlines() if line.startswith("│"))
    paths = ("tones/a440.wav", "tones/a220.flac", "noise/white.ogg", "machines/ticker.wav")
    listed = {p for p in (*paths, "sweeps/chirp.mp3") if f" {p} " in rows}
    assert listed == {"machines/ticker.wav", "sweeps/chirp.mp3"}
    nothing = runner.invoke(app, ["search", "--unlike", "tones/a440.wav"])
    assert nothing.exit_code == 2 and "--like" in nothing.output
