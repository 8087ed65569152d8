import json

from eval import Report, SystemResult


def make_report(n_systems=2):
    systems = [
        SystemResult(
            name=f"sys{i}", settings={"k1": 0.9 + i}, effectiveness={"nDCG@10": 0.5 + i / 10, "R@100": 0.8},
            efficiency={"search_latency": {"p50_ms": 1.0 + i, "p95_ms": 2.0, "p99_ms": 3.0},
                        "encode_and_search_latency": {"p50_ms": 1.5 + i},
                        "query_nnz": {"mean": 5.0}, "doc_nnz": {"mean": 100.0}, "flops": 0.5,
                        "throughput_qps": 1000.0, "index_bytes": 2_000_000, "build_seconds": 0.5,
                        "doc_encode_seconds": 3.0},
            per_query={"q1": {"nDCG@10": 0.5}},
        )
        for i in range(n_systems)
    ]
    return Report(dataset={"name": "toy", "split": "test", "n_docs": 10, "n_judged_queries": 1},
                  measures=["nDCG@10", "R@100"], systems=systems, command="lsr evaluate --dataset toy")


def test_markdown_table_has_effectiveness_and_efficiency():
    md = make_report().to_markdown().splitlines()
    assert md[0].startswith("| system | nDCG@10 | R@100 | q nnz | d nnz | FLOPS | p50 ms")
    assert md[2] == ("| sys0 | 0.5000 | 0.8000 | 5.0 | 100.0 | 0.5 | 1.000 | 2.000 | 3.000 | 1.500 | 1000 | 2.00 "
                     "| 0.50 | 3.0 |")


def test_json_roundtrip_records_version_machine_settings(tmp_path):
    rep = make_report()
    written = rep.save(tmp_path)
    assert set(written) == {"json", "markdown", "plot"}
    assert written["plot"].stat().st_size > 1000
    d = json.loads((tmp_path / "report.json").read_text())
    assert d["format"] == "lsr-report" and d["library_version"]
    assert d["machine"]["cpu"] and d["machine"]["python"]
    assert d["systems"][1]["settings"] == {"k1": 1.9}
    again = Report.load(tmp_path)
    assert again.systems[0].per_query == {"q1": {"nDCG@10": 0.5}}
    assert "lsr evaluate --dataset toy" in (tmp_path / "report.md").read_text()


def test_single_system_writes_no_plot(tmp_path):
    assert "plot" not in make_report(1).save(tmp_path)
