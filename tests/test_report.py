"""The report of real runs on the bundled samples (``recotrig report``, ``recotrig run --report``),
opened in headless Chromium: it loads with no console error, every figure is there, decoded and
not blank, and the page's text holds the comparison table's figures. Bad output directories give
one line naming the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recotrig.sequences.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: run in the page after it loads: each figure's size and pixel spread, and any error, into the DOM
PROBE = """<script>
const errors = [];
window.addEventListener('error', e => errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const figures = [...document.querySelectorAll('img.figure')].map(img => {
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = c.width ? g.getImageData(0, 0, c.width, c.height).data : [];
    let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
    return {name: img.alt, width: img.naturalWidth, complete: img.complete, spread: hi - lo};
  });
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({figures, errors});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    if CHROMIUM is None:
        pytest.fail("the report test needs Chromium: apt-get install chromium (.ci/run installs it)")
    return CHROMIUM


def open_in_browser(page: Path, tmp_path: Path) -> tuple[dict, str, str]:
    """The probe's findings, the page's text and Chromium's log for ``page`` (a probed copy)."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    probe = json.loads(dom[start : dom.index("</pre>", start)].replace("&quot;", '"').replace("&amp;", "&"))
    return probe, dom, done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {"vertexing": base / "vertexing", "trigger": base / "trigger"}
    assert main(["run", "vertexing", "-n", "1", "-o", str(out["vertexing"]), "--no-progress", "--report"]) == 0
    assert main(["run", "trigger", "-o", str(out["trigger"]), "--no-progress"]) == 0
    return out


def test_run_report_opens_in_chromium(runs, tmp_path):
    page = runs["vertexing"] / "report.html"
    assert page.exists() and "http" not in page.read_text().split("<body>", 1)[0].replace("http-equiv", "")
    probe, dom, log = open_in_browser(page, tmp_path)
    assert probe["errors"] == [] and "CONSOLE" not in log.replace("CONSOLE(0)", "")
    names = {f["name"] for f in probe["figures"]}
    assert {"tracking_efficiency", "vertex_efficiency_vs_fp", "vertex_resolution", "timing"} <= names
    for fig in probe["figures"]:
        assert fig["complete"] and fig["width"] > 0 and fig["spread"] > 50, fig
        for ext in ("png", "pdf"):
            assert (runs["vertexing"] / "figures" / f"{fig['name']}.{ext}").stat().st_size > 1000
    table = json.loads((runs["vertexing"] / "comparison.json").read_text())
    for row in table["rows"]:
        assert row["algorithm"] in dom and f"{row['efficiency']:.4f}" in dom
    assert "ActsAMVF(seeder=gaussian) [vertices_amvf] window" in dom and "FP/event" in dom
    assert "pT ≥ 1.0 GeV" in dom and "|Δz| ≤ 0.5 mm" in dom  # the definitions, from the recorded options


def test_trigger_and_overlaid_reports(runs, tmp_path):
    trigger = json.loads((runs["trigger"] / "trigger.json").read_text())
    roc = trigger["signals"]["ato4l"]["hw"]["roc"]
    assert roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0 and len(roc["fpr"]) < 3000
    assert trigger["scores"]["threshold"] > 0
    assert (
        main(
            [
                "report",
                str(runs["trigger"]),
                str(runs["vertexing"]),
                "--labels",
                "l1,reco",
                "-o",
                str(tmp_path / "both"),
            ]
        )
        == 0
    )
    # the 10 s budget for the bundled samples is measured by bench/bench_report.py, not here
    probe, dom, _ = open_in_browser(tmp_path / "both" / "report.html", tmp_path)
    names = {f["name"] for f in probe["figures"]}
    assert {"trigger_roc", "trigger_scores_l1", "vertex_efficiency_vs_fp", "timing"} <= names
    assert all(f["width"] > 0 and f["spread"] > 50 for f in probe["figures"]) and probe["errors"] == []
    assert "zero-bias rate at 40 MHz" not in dom  # axis labels are in the image, the page holds captions
    assert "ROC curve per signal" in dom


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "run.json: missing: {d} is not the output of a recotrig run"),
        ("corrupt", "performance.json: cannot read it as JSON"),
        ("not_record", "run.json: not a recotrig run record"),
    ],
)
def test_bad_output_directory_is_one_line_naming_the_file(runs, tmp_path, case, message):
    d = tmp_path / case
    d.mkdir()
    if case != "empty":
        shutil.copy(runs["vertexing"] / "run.json", d / "run.json")
    if case == "corrupt":
        (d / "performance.json").write_text('{"results": ')
    if case == "not_record":
        (d / "run.json").write_text('{"record": {}}')
    before = sorted(p.name for p in d.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "recotrig.sequences.cli", "report", str(d)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recotrig report: error: "), done.stderr
    assert message.format(d=d) in lines[0]
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written
