"""Results pages and the README's claims table are generated from result files: a hand edit or a result
rebuilt without its pages fails here, so no figure in them is typed by hand."""

from __future__ import annotations

import json

import pytest

from tests.support.benchmark_scripts import load_script


def load(name: str):
    return load_script(name, f"wam_bench_{name}")


@pytest.fixture(scope="module")
def pages():
    return load("pages")


@pytest.fixture(scope="module")
def results_io():
    return load("results_io")


def test_the_pages_and_the_readme_claims_are_fresh(pages, capsys):
    assert pages.main(["--check"]) == 0, capsys.readouterr().out


def test_every_headline_claim_reaches_the_readme(pages):
    readme = pages.README.read_text()
    assert pages.START in readme and pages.END in readme
    for result in pages.load():
        for claim in result["claims"]:
            assert f"[{pages.cell(claim['claim'])}](docs/results/{result['benchmark']}.md)" in readme


def test_a_hand_edited_page_is_reported_stale(pages, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pages, "PAGES", tmp_path)
    monkeypatch.setattr(pages, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text(f"intro\n{pages.START}\nold\n{pages.END}\nrest\n")
    assert pages.main([]) == 0
    assert "rest" in (tmp_path / "README.md").read_text() and "old" not in (tmp_path / "README.md").read_text()
    assert pages.main(["--check"]) == 0
    page = next(p for p in tmp_path.glob("*.md") if p.name not in ("index.md", "README.md"))
    page.write_text(page.read_text().replace("met", "MET"))
    assert pages.main(["--check"]) == 1
    assert page.name in capsys.readouterr().out
    assert pages.main([]) == 0 and pages.main(["--check"]) == 0
    (tmp_path / "orphan.md").write_text("a page whose result file is gone")
    assert pages.main(["--check"]) == 1 and "orphan.md" in capsys.readouterr().out
    assert pages.main([]) == 0 and not (tmp_path / "orphan.md").exists()


def test_a_result_is_written_whole_with_its_provenance(results_io, tmp_path):
    result = results_io.Result("demo", "A demo", "python benchmarks/demo.py", [
        results_io.Claim("it is fast", 12.5, "x", ">= 10x", True, (11.0, 14.0), "n = 3")], planned=4, finished=3)
    path = results_io.write_result(tmp_path / "demo.json", result)
    read = results_io.read_result(path)
    assert read["status"] == "partial" and read["claims"][0]["interval"] == [11.0, 14.0]
    provenance = read["provenance"]
    assert provenance["machine"]["cores"] >= 1 and provenance["date"] and "commit" in provenance
    assert not list(tmp_path.glob("*.tmp"))


def test_a_malformed_result_is_refused_naming_the_field(results_io, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema": results_io.SCHEMA, "benchmark": "x", "title": "x", "command": "x",
                                "status": "complete", "provenance": {}, "claims": [{"claim": "c", "value": 1}]}))
    with pytest.raises(ValueError, match=r"claims\[0\] lacks \['met', 'target', 'unit'\]"):
        results_io.read_result(path)
    path.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="bad.json: schema is 'other'"):
        results_io.read_result(path)
