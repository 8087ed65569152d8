"""``lsr serve``: an index behind an HTTP API (FastAPI on uvicorn) and a page that explains each hit.

    lsr serve idx/scifact --host 127.0.0.1 --port 8000        # then open http://127.0.0.1:8000/

Endpoints (JSON in and out; the OpenAPI description at ``/docs``):

* ``POST /search`` ``{"query": "text"}`` | ``{"queries": [...]}`` | ``{"vector": {"term": weight}}``, with optional
  ``k`` (10), ``filter`` (:mod:`index.fields`), ``engine`` and the approximate knobs (``max_blocks``,
  ``query_terms``, ``candidates``, ``alpha``, ``max_postings``), ``explain`` (per hit, the matched terms: query
  weight x document weight, share of the score, and whether the term is an expansion, i.e. not in the query's or
  the document's text). Answers ``{"results": [{"id", "score", "title", "snippet", "explanation"?}], "took_ms"}``
  (``results`` a list of such lists for ``queries``).
* ``POST /documents`` ``{"documents": [{"id", "text", "title"?, "fields"?}], "commit": false}``: add or replace
  (encoded by the index's encoder); ``DELETE /documents/{id}?commit=true``; ``GET /documents/{id}``;
  ``POST /commit``; ``GET /health``; ``GET /stats``; ``GET /metrics`` (Prometheus text format).

Durability: a write is *acknowledged as durable* when the response says ``"committed": true`` (``commit=true``
on the write, or ``POST /commit`` after it). Such a write survives ``kill -9`` of the server: the commit point
is fsync'd before the response (:mod:`index.segments`). Writes not yet committed are invisible to searches and
lost if the server dies. A built index (``lsr index build``) becomes live on the first start that may write.

Safety: binds 127.0.0.1 unless told otherwise; write endpoints take an API key when one is set (``--api-key`` or
``$LSR_API_KEY``, sent as ``X-API-Key`` or ``Authorization: Bearer``); request size, query length, batch size
and ``k`` are limited (:class:`Limits`), each refusal a JSON 4xx naming the limit. Every error is JSON
``{"error": ...}``; an unexpected one is logged and answered 500 without a traceback.

Concurrency: searches run in parallel threads; writes (encoding) run beside them; a commit swaps the
searchable snapshot under a lock, so a search sees the index before or after a commit, never between.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request, imported in create_app)

import hmac
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
API_KEY_ENV = "LSR_API_KEY"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each refusal names its limit."""

    max_body_bytes: int = 8 << 20
    max_query_chars: int = 2_000
    max_batch: int = 256  # queries per search, documents per write
    max_k: int = 1_000
    max_text_chars: int = 1_000_000  # one document's text


class _ReadWriteLock:
    """Many readers or one writer (searches share; a commit's snapshot swap is exclusive). A waiting writer
    holds back new readers, so a stream of searches cannot starve a commit."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class ServiceError(Exception):
    """A request the service refuses: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Service:
    """The index a server answers from: searches, writes, explanations (independent of HTTP; tested directly).

    Args:
        path: an index folder (live, or built by ``lsr index build``: made live when ``writable``).
        writable: accept writes (a built index with engines beside it is served read-only).
        limits: :class:`Limits`.
    """

    def __init__(self, path: str | os.PathLike, *, writable: bool = True, limits: Limits | None = None):
        from .live import LiveRetriever

        self.path = Path(path)
        self.limits = limits or Limits()
        self.read_only_reason = None if writable else "the server was started read-only (--read-only)"
        try:
            self.live = LiveRetriever.open(self.path, writable=writable)
        except ValueError as e:
            if not writable or "beside the index" not in str(e):
                raise
            self.live = LiveRetriever.open(self.path)  # a built index with Lucene/Milvus/SLIM beside it
            self.read_only_reason = f"served read-only: {e}"
        if self.live.index.marker.get("plain"):
            self.read_only_reason = self.read_only_reason or "a built index opened read-only"
        self.snapshot_lock = _ReadWriteLock()
        self.write_lock = threading.Lock()  # one writer: adds, deletes and commits in order
        self.started = time.time()
        self._text_terms_cache: dict[str, set] = {}
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the encoder and compile (or load from cache) the kernels now, not on the first user's query."""
        t0 = time.perf_counter()
        if self.live.index.n_docs:
            try:
                self.search({"query": "warm up", "k": 1})
            except ServiceError:
                pass
        logger.info("warmed up in %.1f s", time.perf_counter() - t0)

    # ------------------------------------------------------------------ reads
    def search(self, body: dict) -> dict:
        from index import Approx
        from index.searcher import SearchOptions

        lim = self.limits
        kinds = [key for key in ("query", "queries", "vector") if body.get(key) is not None]
        if len(kinds) != 1:
            raise ServiceError(400, 'give exactly one of "query" (text), "queries" (a list of texts) or "vector" '
                                    '({"term": weight})')
        k = body.get("k", 10)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ServiceError(400, f'"k" must be a positive integer, got {k!r}')
        if k > lim.max_k:
            raise ServiceError(400, f'"k" is {k}, above the limit max_k={lim.max_k}')
        knobs = {name: body[name] for name in ("max_blocks", "query_terms", "candidates", "max_postings", "alpha")
                 if body.get(name) is not None}
        try:
            approx = Approx(**knobs).validate() if knobs else None
            options = SearchOptions(engine=body.get("engine") or "auto", approx=approx)
        except (TypeError, ValueError) as e:
            raise ServiceError(400, f"search options: {e}") from None
        if options.searcher != "lsr":
            raise ServiceError(400, f"a served index is searched by lsr's engines (auto, taat, blockmax, oracle), "
                                    f"not {options.engine!r}")
        flt = body.get("filter")
        if flt is not None:
            from index.fields import FilterError, parse_filter

            try:
                parse_filter(flt, self.live.index.schema)
            except FilterError as e:
                raise ServiceError(400, f"filter: {e}") from None
        explain = body.get("explain", kinds[0] != "queries")
        texts = None
        if kinds[0] == "vector":
            vectors = self._vector(body["vector"])
        else:
            texts = [body["query"]] if kinds[0] == "query" else body["queries"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ServiceError(400, '"queries" must be a list of strings' if kinds[0] == "queries"
                                   else '"query" must be a string')
            if len(texts) > lim.max_batch:
                raise ServiceError(400, f"{len(texts)} queries, above the limit max_batch={lim.max_batch}")
            for t in texts:
                if not t.strip():
                    raise ServiceError(400, "a query is empty")
                if len(t) > lim.max_query_chars:
                    raise ServiceError(400, f"a query has {len(t)} characters, above the limit "
                                            f"max_query_chars={lim.max_query_chars}")
        t0 = time.perf_counter()
        if texts is not None:
            vectors = self.live.encoder.encode_queries(texts)
        with self.snapshot_lock.read():
            index = self.live.index
            if index.n_docs == 0:
                hits = [[] for _ in range(vectors.shape[0])]
            else:
                try:
                    res = index.search(vectors, min(k, index.n_docs), options, filter=flt)
                except ValueError as e:
                    raise ServiceError(400, str(e)) from None
                hits = [self._hits(index, vectors, qi, res, explain, texts[qi] if texts else None)
                        for qi in range(vectors.shape[0])]
        took = (time.perf_counter() - t0) * 1e3
        out = {"results": hits if kinds[0] == "queries" else hits[0], "took_ms": round(took, 3)}
        if explain and vectors.shape[0] == 1:
            out["query_terms"] = [{"term": t, "weight": w} for t, w in self.live.encoder.decode(vectors[[0]])]
        return out

    def _vector(self, vec) -> object:
        import scipy.sparse as sp

        if not isinstance(vec, dict) or not vec:
            raise ServiceError(400, '"vector" must be a non-empty object of term: weight')
        terms = self.live.encoder.terms()
        lookup = getattr(self, "_term_ids", None)
        if lookup is None:
            lookup = self._term_ids = {t: i for i, t in enumerate(terms)}
        ids, weights = [], []
        for term, w in vec.items():
            if term not in lookup:
                raise ServiceError(400, f"term {term!r} is not in the encoder's vocabulary")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w <= 0:
                raise ServiceError(400, f"the weight of {term!r} must be a finite number > 0, got {w!r}")
            ids.append(lookup[term])
            weights.append(float(w))
        order = np.argsort(ids)
        return sp.csr_array((np.asarray(weights, np.float32)[order], np.asarray(ids, np.int32)[order],
                             np.asarray([0, len(ids)], np.int64)), shape=(1, len(terms)))

    def _hits(self, index, vectors, qi: int, res, explain: bool, text: str | None) -> list[dict]:
        row = vectors[[qi]]
        q_terms, q_weights = row.indices.astype(np.int64), row.data.astype(np.float32)
        names = self.live.encoder.terms()
        q_surface = self._text_terms(text) if (explain and text) else None
        hits = []
        for d, s in zip(res.doc_idx[qi], res.scores[qi]):
            if d < 0:
                break
            seg_index, local = index.locate(int(d))
            stored = seg_index.stored.get(local) if seg_index.stored is not None else None
            hit = {"id": index.doc_ids[int(d)], "score": float(s)}
            title, body = (stored or {}).get("title") or "", (stored or {}).get("text") or ""
            hit["title"] = title
            hit["snippet"] = _snippet(body)
            if explain:
                dw = seg_index.term_weights(local, q_terms)
                contrib = q_weights * dw
                keep = np.flatnonzero(contrib > 0)
                keep = keep[np.argsort(-contrib[keep], kind="stable")]
                d_surface = self._text_terms(f"{title} {body}".strip()) if stored else None
                total = float(contrib.sum())
                hit["explanation"] = [{
                    "term": names[int(q_terms[j])], "query_weight": float(q_weights[j]),
                    "doc_weight": float(dw[j]), "contribution": float(contrib[j]),
                    "share": float(contrib[j] / total) if total > 0 else 0.0,
                    "query_expansion": None if q_surface is None else int(q_terms[j]) not in q_surface,
                    "doc_expansion": None if d_surface is None else int(q_terms[j]) not in d_surface,
                } for j in keep]
            hits.append(hit)
        return hits

    def _text_terms(self, text: str) -> set:
        """Term ids that occur in ``text`` itself (tokenized, no expansion): what marks an expansion term."""
        cached = self._text_terms_cache.get(text)
        if cached is not None:
            return cached
        enc = self.live.encoder
        tok = getattr(enc, "tokenizer", None)
        if tok is not None:
            ids = set(tok(text, add_special_tokens=False, truncation=False)["input_ids"])
        else:  # BM25 and other encoders without expansion: a query's terms are the text's terms
            ids = set(enc.encode_queries([text]).indices.tolist())
        if len(self._text_terms_cache) > 4096:
            self._text_terms_cache.clear()
        self._text_terms_cache[text] = ids
        return ids

    def document(self, doc_id: str) -> dict:
        with self.snapshot_lock.read():
            try:
                doc = self.live.index.document(doc_id)
            except KeyError:
                raise ServiceError(404, f"document {doc_id!r} is not in the index") from None
        terms, weights = doc.pop("vector")
        names = self.live.encoder.terms()
        order = np.argsort(-weights, kind="stable")
        stored = doc.pop("stored") or {}
        return {**doc, "title": stored.get("title") or "", "text": stored.get("text") or "",
                "terms": [{"term": names[int(terms[i])], "weight": float(weights[i])} for i in order]}

    def stats(self) -> dict:
        with self.snapshot_lock.read():
            d = self.live.describe()
        return {"documents": d["n_docs"], "deleted": d["n_deleted"], "segments": len(d["segments"]),
                "generation": d["generation"], "index_bytes": d["bytes"], "encoder": d["encoder"],
                "fields": self.live.index.schema, "pending_writes": self.live.index.has_pending,
                "writable": self.read_only_reason is None, "read_only_reason": self.read_only_reason,
                "uptime_s": round(time.time() - self.started, 1)}

    # ----------------------------------------------------------------- writes
    def _writable(self) -> None:
        if self.read_only_reason:
            raise ServiceError(409, self.read_only_reason)

    def add(self, body: dict) -> dict:
        self._writable()
        docs = body.get("documents")
        if not isinstance(docs, list) or not docs:
            raise ServiceError(400, '"documents" must be a non-empty list of {"id", "text", "title"?, "fields"?}')
        if len(docs) > self.limits.max_batch:
            raise ServiceError(400, f"{len(docs)} documents, above the limit max_batch={self.limits.max_batch}")
        items = []
        for i, d in enumerate(docs):
            if not isinstance(d, dict):
                raise ServiceError(400, f"documents[{i}] must be an object")
            doc_id, text, title = d.get("id"), d.get("text"), d.get("title") or ""
            if not isinstance(doc_id, str) or not doc_id:
                raise ServiceError(400, f'documents[{i}]: "id" must be a non-empty string')
            if not isinstance(text, str) or not isinstance(title, str) or not (text.strip() or title.strip()):
                raise ServiceError(400, f'documents[{i}] ({doc_id!r}): "text" (and "title") must be strings, '
                                        "not both empty")
            if len(text) + len(title) > self.limits.max_text_chars:
                raise ServiceError(400, f"documents[{i}] ({doc_id!r}) has {len(text) + len(title)} characters, above "
                                        f"the limit max_text_chars={self.limits.max_text_chars}")
            fields = d.get("fields")
            if fields is not None and not isinstance(fields, dict):
                raise ServiceError(400, f'documents[{i}] ({doc_id!r}): "fields" must be an object')
            joined = f"{title.strip()} {text.strip()}".strip()
            items.append((doc_id, joined, fields, {"title": title, "text": text}))
        with self.write_lock:
            try:
                n = self.live.add(items)
            except (TypeError, ValueError) as e:
                raise ServiceError(400, str(e)) from None
            committed = self._commit() if body.get("commit") else None
        return {"added": n, "committed": committed is not None, "generation": committed}

    def delete(self, doc_id: str, commit: bool) -> dict:
        self._writable()
        with self.write_lock:
            try:
                self.live.delete([doc_id])
            except KeyError:
                raise ServiceError(404, f"document {doc_id!r} is not in the index") from None
            committed = self._commit() if commit else None
        return {"deleted": 1, "committed": committed is not None, "generation": committed}

    def commit(self) -> dict:
        self._writable()
        with self.write_lock:
            generation = self._commit()
        return {"committed": True, "generation": generation}

    def _commit(self) -> int:
        """Commit under the write lock; the new snapshot is swapped in while no search runs."""
        with self.snapshot_lock.write():
            return self.live.commit()


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


# ----------------------------------------------------------------------------- HTTP
def create_app(path: str | os.PathLike, *, api_key: str | None = None, writable: bool = True,
               limits: Limits | None = None):
    """The FastAPI application serving ``path`` (see the module documentation)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    from . import __version__

    service = Service(path, writable=writable, limits=limits)
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    app = FastAPI(title="lsr", version=__version__,
                  description="Learned sparse retrieval: search, add, delete; each hit explained term by term.")
    app.state.service = service
    registry = CollectorRegistry()
    requests = Counter("lsr_requests", "HTTP requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("lsr_request_seconds", "request latency", ["route"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > service.limits.max_body_bytes):
            response = error(413, f"the request body has {size} bytes, above the limit "
                                  f"max_body_bytes={service.limits.max_body_bytes}")
        else:
            try:
                response = await call_next(request)
            except Exception:  # noqa: BLE001 - logged; the client gets JSON, never a traceback
                logger.exception("%s %s failed", request.method, request.url.path)
                response = error(500, "internal error (logged by the server)")
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(name, request.method, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - t0)
        return response

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    async def json_body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > service.limits.max_body_bytes:
            raise ServiceError(413, f"the request body has {len(raw)} bytes, above the limit "
                                    f"max_body_bytes={service.limits.max_body_bytes}")
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ServiceError(400, f"the request body is not valid JSON ({e})") from None
        if not isinstance(body, dict):
            raise ServiceError(400, "the request body must be a JSON object")
        return body

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            given = given or auth[7:]
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ServiceError(401, "this endpoint needs the API key (header X-API-Key or Authorization: Bearer)")

    from starlette.concurrency import run_in_threadpool

    @app.post("/search", summary="search with a text, several texts or a vector; hits explained")
    async def search(request: Request):
        return await run_in_threadpool(service.search, await json_body(request))

    @app.post("/documents", summary="add or replace documents (encoded by the index's encoder)")
    async def add_documents(request: Request):
        authorize(request)
        return await run_in_threadpool(service.add, await json_body(request))

    @app.delete("/documents/{doc_id:path}", summary="delete a document by id")
    async def delete_document(doc_id: str, request: Request, commit: bool = False):
        authorize(request)
        return await run_in_threadpool(service.delete, doc_id, commit)

    @app.get("/documents/{doc_id:path}", summary="a document: title, text, fields, its heaviest terms")
    async def get_document(doc_id: str):
        return await run_in_threadpool(service.document, doc_id)

    @app.post("/commit", summary="make every acknowledged write durable and searchable")
    async def commit(request: Request):
        authorize(request)
        return await run_in_threadpool(service.commit)

    @app.get("/health")
    async def health():
        return {"status": "ok", "generation": service.live.index.generation}

    @app.get("/stats")
    async def stats():
        return await run_in_threadpool(service.stats)

    @app.get("/metrics", summary="Prometheus metrics: requests by route and status, latency histograms")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


def serve(path: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          writable: bool = True, limits: Limits | None = None, log_level: str = "info") -> None:
    """Run the server until interrupted (uvicorn, one process; searches in its thread pool)."""
    import uvicorn

    app = create_app(path, api_key=api_key, writable=writable, limits=limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class ServerProcess:
    """``lsr serve`` in a child process, for tests, benchmarks and scripts: started and waited for (``/health``),
    called with JSON, killed (``kill9`` sends SIGKILL to its process group, as a crash would).

    Example:
        >>> server = ServerProcess("idx/scifact")                             # doctest: +SKIP
        >>> server.call("POST", "/search", {"query": "insulin", "k": 3})      # doctest: +SKIP
        (200, {'results': [...], 'took_ms': 3.1})
        >>> server.kill9()                                                    # doctest: +SKIP
    """

    def __init__(self, index: str | os.PathLike, port: int | None = None, args: tuple = (), timeout: float = 180):
        import subprocess
        import sys

        self.port = port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lsr", "-q", "serve", str(index), "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.call("GET", "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"lsr serve exited with {self.process.returncode}: "
                                   f"{self.process.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
        self.kill9()
        raise RuntimeError(f"lsr serve did not answer /health within {timeout:.0f} s")

    def call(self, method: str, path: str, body=None, timeout: float = 60) -> tuple[int, dict]:
        """``(status, JSON answer)`` of one request (an HTTP error status is returned, not raised)."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def kill9(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
