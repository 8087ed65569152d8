"""`lsr serve`: the API through FastAPI's test client (search, explanations that sum to the score, writes, filters,
limits, the API key, metrics, the page), and the durability contract against a real uvicorn process killed with
SIGKILL."""


import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from lsr import load_encoder  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402
from lsr.serve import Limits, create_app  # noqa: E402

DOCS = [("d1", "the cat sat on the mat"), ("d2", "insulin resistance in muscle cells"),
        ("d3", "a dog chased the cat around the garden"), ("d4", "stock markets fell sharply on monday"),
        ("d5", "vitamin d deficiency and bone health")]


@pytest.fixture(scope="module")
def splade_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "idx"
    Retriever.build(DOCS, load_encoder("splade-tiny"), show_progress=False, store=True).save(path)
    return path


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_search_explains_each_hit_and_writes_are_searchable(splade_index, tmp_path):
    client = TestClient(create_app(_copy(splade_index, tmp_path / "idx")))
    body = client.post("/search", json={"query": "cat in the garden", "k": 3}).json()
    assert [h["id"] for h in body["results"]][:2] == ["d3", "d1"] and body["took_ms"] > 0
    for hit in body["results"]:
        parts = hit["explanation"]
        assert parts and sum(p["contribution"] for p in parts) == pytest.approx(hit["score"], rel=1e-5)
        assert sum(p["share"] for p in parts) == pytest.approx(1.0, rel=1e-5)
        assert all(p["contribution"] == pytest.approx(p["query_weight"] * p["doc_weight"], rel=1e-6) for p in parts)
    terms = {p["term"]: p for p in body["results"][0]["explanation"]}
    assert terms["cat"]["query_expansion"] is False and terms["garden"]["doc_expansion"] is False
    assert any(p["query_expansion"] for p in terms.values())  # SPLADE adds terms the query text lacks
    assert body["results"][0]["snippet"] == "a dog chased the cat around the garden"
    assert {t["term"] for t in body["query_terms"]} >= {"cat", "garden"}

    batch = client.post("/search", json={"queries": ["cat", "insulin"], "k": 1}).json()["results"]
    assert [r[0]["id"] for r in batch] == ["d1", "d2"] and "explanation" not in batch[0][0]
    vec = client.post("/search", json={"vector": {"insulin": 1.0}, "k": 1}).json()["results"]
    assert vec[0]["id"] == "d2"

    added = client.post("/documents", json={"documents": [
        {"id": "d6", "title": "Kittens", "text": "a kitten asleep on a mat", "fields": {"year": 2021, "kind": "pet"}},
        {"id": "d1", "text": "the cat slept", "fields": {"year": 1999, "kind": "pet"}}]}).json()
    assert added == {"added": 2, "committed": False, "generation": None}
    assert "d6" not in [h["id"] for h in client.post("/search", json={"query": "kitten"}).json()["results"]]
    assert client.post("/commit").json()["committed"] is True
    hits = client.post("/search", json={"query": "kitten on the mat", "k": 5, "filter": {"year": {"gte": 2000}}})
    assert [h["id"] for h in hits.json()["results"]] == ["d6"]
    doc = client.get("/documents/d6").json()
    assert doc["title"] == "Kittens" and doc["fields"] == {"year": 2021, "kind": "pet"} and doc["terms"]
    assert client.get("/documents/d1").json()["text"] == "the cat slept"  # replaced
    assert client.delete("/documents/d6", params={"commit": "true"}).json()["committed"] is True
    assert client.get("/documents/d6").status_code == 404
    stats = client.get("/stats").json()
    assert stats["documents"] == 5 and stats["writable"] and stats["fields"] == {"year": "numeric", "kind": "keyword"}
    metrics = client.get("/metrics").text
    assert 'lsr_requests_total{method="POST",route="/search",status="200"}' in metrics
    assert "lsr_request_seconds_bucket" in metrics
    page = client.get("/")
    assert page.status_code == 200 and "explain" in page.text


@pytest.mark.parametrize("body, status, message", [
    ({"query": ""}, 400, "empty"),
    ({"query": "x" * 3000}, 400, "max_query_chars=2000"),
    ({"queries": ["a"] * 300}, 400, "max_batch=256"),
    ({"query": "cat", "k": 5000}, 400, "max_k=1000"),
    ({"query": "cat", "k": 0}, 400, "positive integer"),
    ({"query": "cat", "queries": ["dog"]}, 400, "exactly one"),
    ({"vector": {"notaword123": 1.0}}, 400, "not in the encoder's vocabulary"),
    ({"vector": {"cat": -1}}, 400, "finite number > 0"),
    ({"query": "cat", "filter": {"colour": "red"}}, 400, "no document has a field 'colour'"),
    ({"query": "cat", "engine": "warp"}, 400, "unknown engine"),
    ({"query": "cat", "alpha": 7}, 400, "alpha"),
])
def test_bad_searches_get_a_4xx_that_names_the_problem(splade_index, body, status, message):
    client = TestClient(create_app(splade_index, writable=False))
    r = client.post("/search", json=body)
    assert r.status_code == status and message in r.json()["error"], r.json()


def test_writes_need_the_key_and_respect_limits(splade_index, tmp_path):
    client = TestClient(create_app(_copy(splade_index, tmp_path / "idx"), api_key="s3cret",
                                   limits=Limits(max_body_bytes=4000, max_batch=2)))
    doc = {"documents": [{"id": "n1", "text": "new text"}], "commit": True}
    assert client.post("/documents", json=doc).status_code == 401
    assert client.post("/documents", json=doc, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/documents", json=doc, headers={"Authorization": "Bearer s3cret"}).json()["committed"]
    assert client.delete("/documents/n1").status_code == 401
    key = {"X-API-Key": "s3cret"}
    r = client.post("/documents", json={"documents": [{"id": f"m{i}", "text": "t"} for i in range(3)]}, headers=key)
    assert r.status_code == 400 and "max_batch=2" in r.json()["error"]
    r = client.post("/documents", json={"documents": [{"id": "big", "text": "x" * 5000}]}, headers=key)
    assert r.status_code == 413 and "max_body_bytes=4000" in r.json()["error"]
    r = client.post("/documents", json={"documents": [{"id": "", "text": "t"}]}, headers=key)
    assert r.status_code == 400 and '"id"' in r.json()["error"]
    r = client.post("/documents", json={"documents": [{"id": "t1", "text": "t", "fields": {"year": [1, 2]}}]},
                    headers=key)
    assert r.status_code == 400 and "lists hold strings" in r.json()["error"]
    assert client.delete("/documents/nope", headers=key).status_code == 404
    assert client.post("/search", json={"query": "new text", "k": 1}).json()["results"][0]["id"] == "n1"
    read_only = TestClient(create_app(tmp_path / "idx", writable=False))
    r = read_only.post("/documents", json=doc)
    assert r.status_code == 409 and "read-only" in r.json()["error"]


# ----------------------------------------------------------------------------- a real server, killed


def test_a_committed_write_survives_kill_9_and_a_committed_delete_too(tmp_path, lsr_server):
    index = tmp_path / "idx"
    Retriever.build(DOCS, load_encoder("bm25"), show_progress=False, store=True).save(index)  # built, not live
    server = lsr_server(index)
    assert server.call("POST", "/search", {"query": "insulin"})[1]["results"][0]["id"] == "d2"
    status, body = server.call("POST", "/documents",
                               {"documents": [{"id": "new", "text": "insulin pumps for diabetes"}], "commit": True})
    assert status == 200 and body["committed"] is True
    server.call("POST", "/documents", {"documents": [{"id": "uncommitted", "text": "never committed"}]})
    server.kill9()
    server = lsr_server(index)
    assert server.call("GET", "/documents/new")[0] == 200
    assert server.call("GET", "/documents/uncommitted")[0] == 404  # acknowledged but not committed: gone
    assert "new" in [h["id"] for h in server.call("POST", "/search", {"query": "insulin diabetes"})[1]["results"]]
    assert server.call("DELETE", "/documents/new?commit=true")[1]["committed"] is True
    server.kill9()
    server = lsr_server(index)
    assert server.call("GET", "/documents/new")[0] == 404
    assert server.call("GET", "/stats")[1]["documents"] == len(DOCS)


def test_a_commit_is_not_starved_by_a_stream_of_searches():
    import threading
    import time

    from lsr.serve import _ReadWriteLock

    lock, stop, inside = _ReadWriteLock(), threading.Event(), []

    def reader():
        while not stop.is_set():
            with lock.read():
                inside.append(1)
                time.sleep(0.002)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    with lock.write():
        waited = time.perf_counter() - t0
        readers_inside = len(inside)
        time.sleep(0.01)
        assert len(inside) == readers_inside  # no reader entered while the writer held the lock
    stop.set()
    for t in threads:
        t.join()
    assert waited < 1.0
