"""Results pages, the README's claims table and the result blocks of docs pages are generated from result files: a
hand edit or a result rebuilt without its pages fails here, so no figure in them is typed by hand."""

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
    monkeypatch.setattr(pages, "DOCS", tmp_path / "docs")
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


def test_a_result_block_in_a_docs_page_is_filled_and_checked(pages, tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    monkeypatch.setattr(pages, "PAGES", docs / "results")
    monkeypatch.setattr(pages, "README", tmp_path / "README.md")
    monkeypatch.setattr(pages, "DOCS", docs)
    (tmp_path / "README.md").write_text("intro\n")
    result = next(r for r in pages.load() if r["claims"] and (r.get("table") or {}).get("rows"))
    name = result["benchmark"]
    guide, record = docs / "guide.md", docs / "notebook" / "record.md"
    record.parent.mkdir(parents=True)
    guide.write_text(f"# Guide\n\nBefore.\n\n<!-- result:{name} -->\ntyped by hand\n<!-- result:end -->\n\n"
                     f"<!-- result:{name}:table -->\n<!-- result:end -->\n\nAfter.\n")
    record.write_text(f"<!-- result:{name}:claims -->\n<!-- result:end -->\n")
    assert pages.main(["--check"]) == 1 and "guide.md" in capsys.readouterr().out
    assert pages.main([]) == 0 and pages.main(["--check"]) == 0
    text = guide.read_text()
    assert "typed by hand" not in text and text.startswith("# Guide\n\nBefore.") and text.endswith("After.\n")
    assert f"[{pages.cell(result['claims'][0]['claim'])}](results/{name}.md)" in text
    assert pages.table_lines(result["table"])[2] in text
    assert f"(../results/{name}.md)" in record.read_text()

    guide.write_text(text.replace("| met |", "| MET |").replace("| **missed** |", "| MET |"))  # a block edited by hand
    assert pages.main(["--check"]) == 1 and "docs/guide.md" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert pages.main([]) == 0 and guide.read_text() == text

    record.write_text("<!-- result:no_such_benchmark:table -->\n<!-- result:end -->\n")
    assert pages.main(["--check"]) == 2
    out = capsys.readouterr().out
    assert "record.md" in out and "<!-- result:no_such_benchmark:table -->" in out and "no_such_benchmark" in out
    with pytest.raises(ValueError, match=r"record\.md: <!-- result:no_such_benchmark:table --> names no result"):
        pages.expected()
    record.write_text(f"<!-- result:{name}:plot -->\n<!-- result:end -->\n")
    with pytest.raises(ValueError, match=r"record\.md: .*asks for 'plot'"):
        pages.expected()
    record.write_text(f"<!-- result:{name} -->\nno end\n")
    with pytest.raises(ValueError, match=r"record\.md: 1 result marker\(s\) without a pair"):
        pages.expected()


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
