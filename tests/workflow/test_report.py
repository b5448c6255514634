"""The Snakemake HTML report of a smoke run, opened in headless Chromium: every result is
there with its caption, every figure decodes and is shown by the report's own viewer."""
import json
import os
import shutil
from pathlib import Path

import pytest
from playwright import sync_api

from conftest import ROOT, SMOKE, snakemake

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPECTED = {  # category -> labels of the results in it
    "Main comparison": {"AP vs iterations", "final metrics table", "the paper's claims, checked"},
    "Schedules": {"final AP per schedule", "pre-training's lead against the margin"},
    "Less data": {"AP vs iterations per data regime"},
    "Normalisation": {"GN vs SyncBN"},
    "Pre-training": {"val top-1 per epoch"},
    "Models": {"deeper, wider and unnormalised models"},
    "Keypoints": {"keypoint AP, scratch vs pretrained"},
    "Datasets": {"VOC mAP, scratch vs pretrained"},
    "Recipes": {"enhanced recipe, scratch vs pretrained"},
    "Cost": {"wall time and memory per stage", "images, instances, pixels seen",
             "images, instances, pixels seen (table)", "the data, next to the paper's (table)"},
}
SCREENSHOTS = Path(os.environ.get("REPORT_SCREENSHOTS", ROOT / "tests" / "screenshots"))


@pytest.fixture(scope="module")
def report(smoke):
    path = smoke / "results" / "report.html"
    snakemake("--configfile", str(SMOKE), "--report", str(path), cwd=smoke)
    return path


def test_report_has_every_result_with_a_caption(report):
    html = report.read_text()
    start = html.index('<script id="results">')
    payload = html[html.index("var results = ", start) + len("var results = "):html.index("</script>", start)]
    results = json.loads(payload.strip().rstrip(";"))
    names = {r["name"] for r in results.values()}
    assert names == {"ap_curves.png", "final_ap.png", "lead.png", "less_data.png", "norms.png", "compute_seen.png",
                     "pretrain_curve.png", "pretrain_strength.png", "models.png", "keypoints.png",
                     "datasets.png", "recipes.png", "final_metrics.csv", "claims.csv",
                     "compute_seen.csv", "world_stats.csv", "job_costs.csv"}
    for r in results.values():
        assert len(r["caption"]) > 80, r["name"]
    assert "Configuration" in html and "one_x" in html  # the config used is in the report


def test_report_renders_every_figure_in_chromium(report):
    assert Path(CHROMIUM).exists(), "chromium is needed (Debian package `chromium`; .ci/run installs it)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        page.screenshot(path=SCREENSHOTS / "report_home.png")
        # Every embedded image decodes in the browser.
        decoded = page.evaluate("""async () => {
            const out = {};
            for (const r of Object.values(results)) {
              if (!r.mime_type.startsWith('image/')) continue;
              const img = new Image(); img.src = r.data_uri;
              try { await img.decode(); out[r.name] = img.naturalWidth; } catch (e) { out[r.name] = 0; }
            }
            return out; }""")
        assert decoded.keys() == {"ap_curves.png", "final_ap.png", "lead.png", "less_data.png", "norms.png",
                                  "compute_seen.png", "pretrain_curve.png", "pretrain_strength.png",
                                  "models.png", "keypoints.png", "datasets.png", "recipes.png"}
        assert all(width > 300 for width in decoded.values()), decoded
        # Each category lists its results; the report's viewer shows each figure.
        for category, labels in EXPECTED.items():
            page.goto(report.as_uri())
            page.get_by_role("link", name=category).click()
            for label in labels:
                assert page.get_by_text(label).first.is_visible(), (category, label)
            for label in labels & {"AP vs iterations", "final AP per schedule",
                                   "AP vs iterations per data regime", "GN vs SyncBN",
                                   "val top-1 per epoch"}:
                row = page.locator("tr", has_text=label).first
                row.locator("a[iconname=eye]").click()
                page.wait_for_function(
                    "() => Array.from(document.images).some(i => i.src.startsWith('data:image/png')"
                    " && i.complete && i.naturalWidth > 300)", timeout=10_000)
                page.screenshot(path=SCREENSHOTS / f"report_{label.replace(' ', '_')}.png")
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0).length")
        assert broken == 0
        assert not errors, errors
        browser.close()
