"""Numba kernels of the engine: module-level functions over flat typed arrays.

Python wrappers (:mod:`index.inverted`, :mod:`index.builder`) validate and convert; these kernels
trust their inputs. Batch kernels run one query per thread (``prange`` over thread slots, each
with private buffers) and write only their own rows of preallocated outputs.

Scores are accumulated in float32, term by term in ascending term-id order, exactly as the scipy
oracle accumulates them, so exact kernels return the oracle's top-k bit for bit. Impacts may be
float32 or integer codes; an impact is ``float32(code) * scale`` (scale 1 for float32).

Top-k order: higher score first; equal scores by smaller document index. The heap keeps the
*worst* kept entry at its root.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ----------------------------------------------------------------------------- top-k heap


@njit(cache=True, inline="always")
def _worse(s1, d1, s2, d2):
    """True if (s1, d1) ranks below (s2, d2)."""
    return s1 < s2 or (s1 == s2 and d1 > d2)


@njit(cache=True, inline="always")
def _admits(size, k, s, d, ts, td):
    """Cheap pre-check against the current threshold (ts, td) = worst kept entry, before a push."""
    return size < k or s > ts or (s == ts and d < td)


@njit(cache=True, inline="always")
def _heap_push(hs, hd, size, k, s, d):
    """Offer (s, d) to a bounded min-heap of size ``k``; return the new size."""
    if size < k:
        i = size
        hs[i] = s
        hd[i] = d
        while i > 0:
            p = (i - 1) >> 1
            if _worse(hs[i], hd[i], hs[p], hd[p]):
                hs[i], hs[p] = hs[p], hs[i]
                hd[i], hd[p] = hd[p], hd[i]
                i = p
            else:
                break
        return size + 1
    if not _worse(hs[0], hd[0], s, d):
        return size
    hs[0] = s
    hd[0] = d
    _sift_down(hs, hd, 0, size)
    return size


@njit(cache=True, inline="always")
def _sift_down(hs, hd, i, size):
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        c = left
        right = left + 1
        if right < size and _worse(hs[right], hd[right], hs[left], hd[left]):
            c = right
        if _worse(hs[c], hd[c], hs[i], hd[i]):
            hs[c], hs[i] = hs[i], hs[c]
            hd[c], hd[i] = hd[i], hd[c]
            i = c
        else:
            return


@njit(cache=True, inline="always")
def _offer(hs, hd, size, k, s, d, allow, pos, ts, td):
    """Offer local document ``d`` with score ``s`` to a top-``k`` heap whose worst kept entry is ``(ts, td)``:
    skipped where ``allow`` (non-empty) masks it out; it enters as ``pos[d]`` where ``pos`` is given (a live
    index's position, which breaks ties). Returns the heap size and its new worst entry."""
    if allow.shape[0] > 0 and allow[d] == 0:
        return size, ts, td
    dd = pos[d] if pos.shape[0] > 0 else d
    if _admits(size, k, s, dd, ts, td):
        size = _heap_push(hs, hd, size, k, s, dd)
        if size == k:
            ts = hs[0]
            td = hd[0]
    return size, ts, td


@njit(cache=True)
def _heap_emit(hs, hd, size, out_docs, out_scores):
    """Write the heap's entries best first into one output row (heapsort, O(k log k))."""
    n = size
    while n > 1:  # move the worst entry to the end, shrink, repair
        n -= 1
        hs[0], hs[n] = hs[n], hs[0]
        hd[0], hd[n] = hd[n], hd[0]
        _sift_down(hs, hd, 0, n)
    for i in range(size):
        out_docs[i] = hd[i]
        out_scores[i] = hs[i]


# Accumulators are drained in chunks of CHUNK documents: the chunk's maximum (a branch-free, vectorised
# reduction) is compared with the heap's threshold, and only chunks that can place a document are read one
# document at a time. Sparse queries mark the chunks they touch (one byte per chunk), so the drain skips the
# untouched ones without a branch per posting; dense queries scan every chunk.
CHUNK_SHIFT = 6
CHUNK = 1 << CHUNK_SHIFT


@njit(cache=True, inline="always")
def n_chunks(n_docs):
    """Chunks covering ``n_docs`` documents (the size of a drain mark array)."""
    return (n_docs + CHUNK - 1) >> CHUNK_SHIFT


@njit(cache=True, inline="always")
def _accumulate(p0, p1, w, pdocs, pimp, scale, acc):
    """Add postings ``p0 .. p1 - 1`` (one term's, or a slice of them), weighted by ``w``, into ``acc``."""
    for p in range(p0, p1):
        acc[pdocs[p]] += w * (np.float32(pimp[p]) * scale)


@njit(cache=True, inline="always")
def _accumulate_marking(p0, p1, w, pdocs, pimp, scale, acc, mark):
    """:func:`_accumulate`, also marking the chunk of every document it adds to."""
    for p in range(p0, p1):
        d = pdocs[p]
        acc[d] += w * (np.float32(pimp[p]) * scale)
        mark[d >> CHUNK_SHIFT] = 1


@njit(cache=True, inline="always")
def _accumulate_listing(p0, p1, w, pdocs, pimp, scale, acc, lst, n):
    """:func:`_accumulate`, also appending to ``lst`` (from position ``n``) every document whose score was zero
    before: branch-free (the slot is written every time, the count grows only for a new document). Returns
    the new count. A zero contribution can list a document twice; :func:`_drain_list` offers it once."""
    for p in range(p0, p1):
        d = pdocs[p]
        v = acc[d]
        lst[n] = d
        n += v == 0
        acc[d] = v + w * (np.float32(pimp[p]) * scale)
    return n


@njit(cache=True)
def _drain_list(lst, n, acc, hs, hd, size, k, allow, pos):
    """Offer the documents ``lst[:n]`` with a positive score to a top-``k`` heap holding ``size`` entries
    (``allow`` and ``pos`` as for :func:`_drain`), zeroing their scores behind; return the new heap size.
    The heap orders by (score, id), so the order documents are offered in does not change the result."""
    ts = hs[0] if size == k else np.float32(0)
    td = hd[0] if size == k else np.int32(0)
    for i in range(n):
        d = lst[i]
        s = acc[d]
        if s > 0:
            if size < k or s >= ts:
                size, ts, td = _offer(hs, hd, size, k, s, d, allow, pos, ts, td)
            acc[d] = 0
    return size


@njit(cache=True, inline="always")
def _drain_span(lo, hi, acc, hs, hd, size, k, allow, pos, ts, td):
    """Offer documents ``lo..hi-1`` (at most CHUNK of them) with a positive score to a top-``k`` heap (worst
    kept entry ``(ts, td)`` once full), zeroing them behind; return the heap size and its worst entry."""
    full = hi - lo == CHUNK  # a constant trip count: the loops below vectorise
    top = np.float32(0)
    if full:
        for o in range(CHUNK):
            v = acc[lo + o]
            top = v if v > top else top
    else:
        for d in range(lo, hi):
            v = acc[d]
            top = v if v > top else top
    if top == 0:  # scores never fall below zero (weights and impacts do not): nothing to offer or clear
        return size, ts, td
    if size < k or top >= ts:  # >=: an equal score can still win its tie on a smaller id
        for d in range(lo, hi):
            s = acc[d]
            if s > 0:
                size, ts, td = _offer(hs, hd, size, k, s, d, allow, pos, ts, td)
    acc[lo:hi] = 0
    return size, ts, td


@njit(cache=True)
def _drain(acc, mark, dense, n_docs, hs, hd, size, k, allow, pos):
    """Offer every document with a positive score in ``acc`` to a top-``k`` heap holding ``size`` entries
    and zero ``acc`` behind: every chunk if ``dense``, else the chunks ``mark`` flags (cleared behind).
    ``allow``: per document, 0 where it may not be returned (deleted, or outside a filter); empty: all may.
    ``pos``: the id each document enters the heap as (a live index's position across segments, which also
    breaks ties); empty: its own index. Returns (heap size, chunks drained)."""
    return _drain_between(acc, mark, dense, 0, n_chunks(n_docs), n_docs, hs, hd, size, k, allow, pos)


@njit(cache=True)
def _drain_between(acc, mark, dense, c_lo, c_hi, n_docs, hs, hd, size, k, allow, pos):
    """:func:`_drain` over chunks ``c_lo .. c_hi - 1`` only."""
    ts = hs[0] if size == k else np.float32(0)
    td = hd[0] if size == k else np.int32(0)
    drained = 0
    for c in range(c_lo, c_hi):
        if not dense:
            if mark[c] == 0:
                continue
            mark[c] = 0
        lo = c << CHUNK_SHIFT
        size, ts, td = _drain_span(lo, min(lo + CHUNK, n_docs), acc, hs, hd, size, k, allow, pos, ts, td)
        drained += 1
    return size, drained


@njit(cache=True)
def _drain_range(lo, hi, acc, hs, hd, size, k, allow, pos):
    """Offer documents ``lo..hi-1`` with a positive score (``allow`` and ``pos`` as for :func:`_drain`)
    to a top-``k`` heap already holding ``size`` entries, zeroing ``acc[lo:hi]`` behind; return the new
    heap size."""
    ts = hs[0] if size == k else np.float32(0)
    td = hd[0] if size == k else np.int32(0)
    for start in range(lo, hi, CHUNK):
        size, ts, td = _drain_span(start, min(start + CHUNK, hi), acc, hs, hd, size, k, allow, pos, ts, td)
    return size


# A query reading at least n_docs / DENSE_POSTINGS postings (two per chunk: most chunks hold one) skips the chunk
# marks and drains every chunk.
DENSE_POSTINGS = 32

# A query reading fewer than n_docs / LIST_POSTINGS postings (but too many for chunk marks) lists the documents
# it scores as it adds them and drains only those: at 1M documents an inference-free query (~110k postings
# touching most chunks) spent ~0.47 ms reading and zeroing the whole 4 MB array and ~0.25 ms on its postings;
# listing costs ~2.4 ns a posting, so the list wins below ~n_docs / 5 postings. Not used when a query is
# scored a slice of documents at a time (more than SLICE_DOCS documents; not measured there).
LIST_POSTINGS = 5


# Dense queries over more documents than SLICE_DOCS are scored a slice of documents at a time (every term's
# postings in the slice, then the slice drained), so the part of the accumulator being written stays in cache:
# at 8.8M documents the whole array (35 MB) is larger than this machine's L3, and the same postings scattered
# over it took 6.5x longer than over 4 MB. A multiple of CHUNK.
SLICE_DOCS = 1 << 20


@njit(cache=True)
def _taat_one(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, acc, mark, lst, hs, hd,
              out_docs, out_scores, stats, slice_docs):
    size, postings, drained = _taat_into(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow,
                                         np.empty(0, dtype=np.int32), acc, mark, lst, hs, hd, 0, slice_docs)
    _heap_emit(hs, hd, size, out_docs[qi], out_scores[qi])
    stats[qi, 0] = postings
    stats[qi, 1] = 0
    stats[qi, 2] = drained


@njit(cache=True)
def _taat_into(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, pos, acc, mark, lst, hs, hd,
               size, slice_docs):
    """Query ``qi`` term at a time over one index, offered to a heap holding ``size`` entries (``allow``,
    ``pos`` as for :func:`_drain`; ``acc`` zero and ``mark`` clear on entry and on return; ``lst``: int32
    scratch of at least ``n_docs + 1`` entries, any content); a dense query over more than ``slice_docs``
    documents (a multiple of CHUNK) goes a slice at a time. Returns (heap size, postings scored, chunks
    drained or, for a listed query, documents listed)."""
    postings = 0
    for j in range(qptr[qi], qptr[qi + 1]):
        t = qidx[j]
        postings += toff[t + 1] - toff[t]
    dense = postings * DENSE_POSTINGS >= n_docs
    if dense and postings * LIST_POSTINGS < n_docs and n_docs <= slice_docs and lst.shape[0] > n_docs:
        n = 0
        for j in range(qptr[qi], qptr[qi + 1]):
            t = qidx[j]
            n = _accumulate_listing(toff[t], toff[t + 1], qval[j], pdocs, pimp, scale, acc, lst, n)
        return _drain_list(lst, n, acc, hs, hd, size, k, allow, pos), postings, n
    if dense and n_docs > slice_docs:
        lo_q = qptr[qi]
        m = qptr[qi + 1] - lo_q
        cur = np.empty(m, dtype=np.int64)  # per term, its first posting not yet scored
        for i in range(m):
            cur[i] = toff[qidx[lo_q + i]]
        drained = 0
        for base in range(0, n_docs, slice_docs):
            end = min(base + slice_docs, n_docs)
            for i in range(m):  # terms in query order: every document's sum keeps the oracle's order
                t = qidx[lo_q + i]
                w = qval[lo_q + i]
                p0 = cur[i]
                p1 = p0 + np.searchsorted(pdocs[p0:toff[t + 1]], end)
                _accumulate(p0, p1, w, pdocs, pimp, scale, acc)
                cur[i] = p1
            size, d = _drain_between(acc, mark, True, base >> CHUNK_SHIFT, n_chunks(end), n_docs, hs, hd, size, k,
                                     allow, pos)
            drained += d
        return size, postings, drained
    for j in range(qptr[qi], qptr[qi + 1]):
        t = qidx[j]
        if dense:
            _accumulate(toff[t], toff[t + 1], qval[j], pdocs, pimp, scale, acc)
        else:
            _accumulate_marking(toff[t], toff[t + 1], qval[j], pdocs, pimp, scale, acc, mark)
    size, drained = _drain(acc, mark, dense, n_docs, hs, hd, size, k, allow, pos)
    return size, postings, drained


@njit(parallel=True, cache=True)
def taat_search(qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, n_threads, accs, marks, lists,
                out_docs, out_scores, stats, slice_docs):
    """Exhaustive term-at-a-time search of every query (rows of a CSR batch).

    Scores accumulate into a dense array, term by term; the top-k is then collected chunk by chunk, each
    chunk's maximum checked against the heap's threshold first (see :func:`_drain`).
    ``allow`` (uint8 ``[n_docs]``, or empty for every document): only documents with a non-zero entry are
    returned, so ``k`` come back whenever ``k`` allowed documents score above zero. ``n_threads`` thread
    slots (``numba.get_num_threads()`` from the caller) each use their row of the scratch arrays ``accs``
    (float32 ``[>= n_threads, n_docs]``) and ``marks`` (uint8 ``[>= n_threads, n_chunks(n_docs)]``), zero on
    entry and left zero (a caller reuses them across calls: a fresh 4 MB array per call costs milliseconds),
    and ``lists`` (int32 ``[>= n_threads, n_docs + 1]``, any content: see LIST_POSTINGS).
    ``slice_docs``: see SLICE_DOCS. stats[q] = (postings scored, blocks scored (0 here), chunks drained or
    documents listed).
    """
    nq = qptr.shape[0] - 1
    nt = min(n_threads, max(nq, 1))
    for slot in prange(nt):
        acc = accs[slot]
        mark = marks[slot]
        lst = lists[slot]
        hs = np.empty(k, dtype=np.float32)
        hd = np.empty(k, dtype=np.int32)
        for qi in range(slot, nq, nt):
            _taat_one(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, acc, mark, lst, hs, hd,
                      out_docs, out_scores, stats, slice_docs)


@njit(cache=True)
def taat_search_serial(qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, accs, marks, lists,
                       out_docs, out_scores, stats, slice_docs):
    """:func:`taat_search` on the calling thread (row 0 of the scratch arrays): no thread-pool launch, for one
    query or one thread."""
    acc = accs[0]
    mark = marks[0]
    lst = lists[0]
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int32)
    for qi in range(qptr.shape[0] - 1):
        _taat_one(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, n_docs, k, allow, acc, mark, lst, hs, hd,
                  out_docs, out_scores, stats, slice_docs)


# ----------------------------------------------------------------------------- block-max pruning


@njit(cache=True, inline="always")
def _find_block(bm_blocks, lo, hi, b):
    """Index of block ``b`` in the sorted ``bm_blocks[lo:hi]``, or -1."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = bm_blocks[mid]
        if v < b:
            lo = mid + 1
        elif v > b:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True)
def _score_block(b, terms, weights, m, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_start,
                 block_size, acc_block, hs, hd, size, k, allow, pos):
    """Score every document of block ``b`` exactly; offer them to the heap; return (size, postings)."""
    base = b * block_size
    postings = 0
    for i in range(m):
        t = terms[i]
        j = _find_block(bm_blocks, bm_off[t], bm_off[t + 1], b)
        if j < 0:
            continue
        base_t = toff[t]
        lo = base_t + bm_start[j]
        hi = base_t + bm_start[j + 1] if j + 1 < bm_off[t + 1] else toff[t + 1]
        w = weights[i]
        postings += hi - lo
        for p in range(lo, hi):
            acc_block[pdocs[p] - base] += w * (np.float32(pimp[p]) * scale)
    ts = hs[0] if size == k else np.float32(0)
    td = hd[0] if size == k else np.int32(0)
    for o in range(block_size):
        s = acc_block[o]
        if s > 0:
            acc_block[o] = 0
            size, ts, td = _offer(hs, hd, size, k, s, base + o, allow, pos, ts, td)
    return size, postings


@njit(cache=True)
def _longest_row(qptr):
    """The most terms in one query of a CSR batch (at least 1): the size of per-thread term buffers."""
    longest = 1
    for qi in range(qptr.shape[0] - 1):
        if qptr[qi + 1] - qptr[qi] > longest:
            longest = qptr[qi + 1] - qptr[qi]
    return longest


@njit(cache=True)
def _select_terms(qi, qptr, qidx, qval, max_terms, terms, weights):
    """Copy query ``qi``'s terms (only its ``max_terms`` heaviest if > 0; ties to the smaller term id),
    kept in ascending term-id order, into ``terms``/``weights``; return how many."""
    lo_q = qptr[qi]
    m_all = qptr[qi + 1] - lo_q
    m = 0
    if max_terms > 0 and m_all > max_terms:
        wsorted = np.sort(qval[lo_q:lo_q + m_all])
        cut = wsorted[m_all - max_terms]
        n_above = 0
        for i in range(m_all):
            if qval[lo_q + i] > cut:
                n_above += 1
        ties_left = max_terms - n_above
        for i in range(m_all):
            w = qval[lo_q + i]
            if w > cut or (w == cut and ties_left > 0):
                if w == cut:
                    ties_left -= 1
                terms[m] = qidx[lo_q + i]
                weights[m] = w
                m += 1
    else:
        for i in range(m_all):
            terms[m] = qidx[lo_q + i]
            weights[m] = qval[lo_q + i]
            m += 1
    return m


@njit(cache=True)
def _blockmax_one(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_max, bm_start,
                  block_size, n_docs, k, alpha, max_blocks, seed_blocks, max_terms, allow, block_allow,
                  ub, state, touched, acc, acc_block, terms, weights, bh_s, bh_d, hs, hd,
                  out_docs, out_scores, stats):
    size, postings, blocks, n_touched = _blockmax_into(
        qi, qptr, qidx, qval, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_max, bm_start, block_size, n_docs, k,
        alpha, max_blocks, seed_blocks, max_terms, allow, block_allow, np.empty(0, dtype=np.int32),
        ub, state, touched, acc, acc_block, terms, weights, bh_s, bh_d, hs, hd, 0)
    _heap_emit(hs, hd, size, out_docs[qi], out_scores[qi])
    stats[qi, 0] = postings
    stats[qi, 1] = blocks
    stats[qi, 2] = n_touched


@njit(cache=True)
def _blockmax_into(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_max, bm_start,
                   block_size, n_docs, k, alpha, max_blocks, seed_blocks, max_terms, allow, block_allow, pos,
                   ub, state, touched, acc, acc_block, terms, weights, bh_s, bh_d, hs, hd, size):
    """Query ``qi`` by block-max pruning over one index, offered to a heap holding ``size`` entries (from
    other segments: its threshold prunes this index's blocks too); ``allow``, ``pos`` as for
    :func:`_drain`. Returns (heap size, postings scored, blocks scored, blocks touched)."""
    m = _select_terms(qi, qptr, qidx, qval, max_terms, terms, weights)

    # ---- phase 1: upper bound of every block the query touches (blocks without an allowed document skipped)
    n_touched = 0
    block_masked = block_allow.shape[0] > 0
    for i in range(m):
        t = terms[i]
        w = weights[i]
        for j in range(bm_off[t], bm_off[t + 1]):
            b = bm_blocks[j]
            if block_masked and block_allow[b] == 0:
                continue
            if ub[b] == 0:
                touched[n_touched] = b
                n_touched += 1
            ub[b] += w * bm_max[j]

    # ---- phase 2: the best seed blocks by bound, scored one by one (best first)
    n_seed = seed_blocks if max_blocks <= 0 else max_blocks
    if n_seed > n_touched:
        n_seed = n_touched
    bsize = 0
    bts = np.float32(0)
    btd = np.int32(0)
    for i in range(n_touched):
        b = touched[i]
        u = ub[b]
        if u > 0 and _admits(bsize, n_seed, u, b, bts, btd):
            bsize = _heap_push(bh_s, bh_d, bsize, n_seed, u, b)
            if bsize == n_seed:
                bts = bh_s[0]
                btd = bh_d[0]
    order_b = np.empty(bsize, dtype=np.int32)
    order_s = np.empty(bsize, dtype=np.float32)
    _heap_emit(bh_s, bh_d, bsize, order_b, order_s)

    postings = 0
    blocks = 0
    for i in range(bsize):
        b = order_b[i]
        if size == k and alpha * ub[b] < hs[0]:
            break  # bounds only fall from here on
        size, p = _score_block(b, terms, weights, m, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_start,
                               block_size, acc_block, hs, hd, size, k, allow, pos)
        postings += p
        blocks += 1
        state[b] = 2  # scored

    # ---- phase 3 (unless a block budget was given): every other block whose bound reaches the threshold
    if max_blocks <= 0:
        theta = hs[0] if size == k else np.float32(-np.inf)
        n_alive = 0
        for i in range(n_touched):
            b = touched[i]
            if state[b] == 0 and ub[b] > 0 and alpha * ub[b] >= theta:
                state[b] = 1
                n_alive += 1
        if n_alive > 0:
            for i in range(m):
                t = terms[i]
                w = weights[i]
                last = bm_off[t + 1]
                base_t = toff[t]
                for j in range(bm_off[t], last):
                    b = bm_blocks[j]
                    if state[b] == 1:
                        lo = base_t + bm_start[j]
                        hi = base_t + bm_start[j + 1] if j + 1 < last else toff[t + 1]
                        postings += hi - lo
                        for p in range(lo, hi):
                            acc[pdocs[p]] += w * (np.float32(pimp[p]) * scale)
            for i in range(n_touched):
                b = touched[i]
                if state[b] == 1:
                    blocks += 1
                    base = b * block_size
                    size = _drain_range(base, min(base + block_size, n_docs), acc, hs, hd, size, k, allow, pos)

    for i in range(n_touched):
        b = touched[i]
        ub[b] = 0
        state[b] = 0
    return size, postings, blocks, n_touched


@njit(parallel=True, cache=True)
def blockmax_search(qptr, qidx, qval, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_max, bm_start,
                    block_size, n_docs, k, alpha, max_blocks, seed_blocks, max_terms, allow, block_allow, n_threads,
                    accs, out_docs, out_scores, stats):
    """Block-max pruned search (in the spirit of BMP, Mallia et al., SIGIR 2024).

    1. Upper bound per block: sum over query terms of weight x the term's maximum in the block.
    2. The ``seed_blocks`` best blocks by bound are scored exactly, best first, to raise the
       top-k threshold.
    3. Every other block whose bound reaches the threshold is scored (term at a time, restricted
       to those blocks). With ``alpha = 1`` and no budget this is exact.

    Approximate knobs: ``alpha < 1`` skips blocks with ``alpha * bound < threshold``;
    ``max_blocks > 0`` scores only that many best blocks (no phase 3); ``max_terms > 0`` keeps only
    the heaviest query terms. ``allow`` as for :func:`taat_search`, with ``block_allow`` (uint8
    ``[n_blocks]``: 0 for a block without an allowed document, whose bound is then never computed;
    empty with ``allow``). ``accs``: scratch rows as for :func:`taat_search`.
    stats[q] = (postings scored, blocks scored, blocks touched).
    """
    nq = qptr.shape[0] - 1
    n_blocks = (n_docs + block_size - 1) // block_size
    nt = min(n_threads, max(nq, 1))
    max_m = _longest_row(qptr)
    n_seed_cap = max(1, seed_blocks if max_blocks <= 0 else max_blocks)
    for slot in prange(nt):
        ub = np.zeros(n_blocks, dtype=np.float32)
        state = np.zeros(n_blocks, dtype=np.uint8)
        touched = np.empty(n_blocks, dtype=np.int32)
        acc = accs[slot]
        acc_block = np.zeros(block_size, dtype=np.float32)
        terms = np.empty(max_m, dtype=np.int32)
        weights = np.empty(max_m, dtype=np.float32)
        bh_s = np.empty(n_seed_cap, dtype=np.float32)
        bh_d = np.empty(n_seed_cap, dtype=np.int32)
        hs = np.empty(k, dtype=np.float32)
        hd = np.empty(k, dtype=np.int32)
        for qi in range(slot, nq, nt):
            _blockmax_one(qi, qptr, qidx, qval, toff, pdocs, pimp, scale, bm_off, bm_blocks, bm_max, bm_start,
                          block_size, n_docs, k, alpha, max_blocks, seed_blocks, max_terms, allow, block_allow,
                          ub, state, touched, acc, acc_block, terms, weights, bh_s, bh_d, hs, hd,
                          out_docs, out_scores, stats)


# ----------------------------------------------------------------------------- segments (a live index)


@njit(cache=True, nogil=True)
def segments_search(qptr, qidx, qval, toffs, pdocss, pimps, scales, seg_docs, allows, poss, bm_offs, bm_blockss,
                    bm_maxs, bm_starts, block_allows, block_sizes, use_bm, k, alpha, max_blocks, seed_blocks,
                    max_terms, q_lo, q_hi, out_docs, out_scores, stats):
    """Exact (or block-approximate) search over the segments of a live index, with one top-k heap per query.

    Segment ``s`` is ``toffs[s], pdocss[s], pimps[s]`` with impact scale ``scales[s]`` over ``seg_docs[s]``
    documents; ``allows[s]`` (uint8, or empty) masks its deleted and filtered-out documents; ``poss[s]``
    (int32) maps its documents to live positions, the ids the heap holds and ties break on, so the result
    equals the oracle over the live documents. ``bm_*s[s]``, ``block_allows[s]`` and ``block_sizes[s]`` are
    its block-max metadata (as :func:`blockmax_search` takes them); ``use_bm[s, q]`` picks block-max (1)
    or term-at-a-time (0) per segment and query. Segments are searched in the order given, every one into
    the same heap, so the threshold reached in one prunes the blocks of the next (as Lucene shares the
    minimum competitive score across segments); give the largest first. Approximate knobs as for
    :func:`blockmax_search` (``max_blocks`` then counts per segment). stats[q] = (postings scored, blocks
    scored, documents or blocks touched), summed over segments.

    Queries ``q_lo .. q_hi - 1`` are searched, on the calling thread without the GIL: the caller runs
    slices of a batch on threads of its own (a ``prange`` over typed lists costs milliseconds per call).
    """
    n_seg = seg_docs.shape[0]
    max_docs = 1
    max_blocks_n = 1
    max_bs = 1
    for s in range(n_seg):
        if seg_docs[s] > max_docs:
            max_docs = seg_docs[s]
        nb = (seg_docs[s] + block_sizes[s] - 1) // block_sizes[s]
        if nb > max_blocks_n:
            max_blocks_n = nb
        if block_sizes[s] > max_bs:
            max_bs = block_sizes[s]
    max_m = _longest_row(qptr)
    n_seed_cap = max(1, seed_blocks if max_blocks <= 0 else max_blocks)
    acc = np.zeros(max_docs, dtype=np.float32)
    mark = np.zeros(n_chunks(max_docs), dtype=np.uint8)
    lst = np.empty(max_docs + 1, dtype=np.int32)
    touched = np.empty(max_blocks_n, dtype=np.int32)
    ub = np.zeros(max_blocks_n, dtype=np.float32)
    state = np.zeros(max_blocks_n, dtype=np.uint8)
    acc_block = np.zeros(max_bs, dtype=np.float32)
    terms = np.empty(max_m, dtype=np.int32)
    weights = np.empty(max_m, dtype=np.float32)
    bh_s = np.empty(n_seed_cap, dtype=np.float32)
    bh_d = np.empty(n_seed_cap, dtype=np.int32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int32)
    for qi in range(q_lo, q_hi):
        size = 0
        postings = 0
        blocks = 0
        seen = 0
        for s in range(n_seg):
            if use_bm[s, qi]:
                size, p, b, t = _blockmax_into(
                    qi, qptr, qidx, qval, toffs[s], pdocss[s], pimps[s], scales[s], bm_offs[s], bm_blockss[s],
                    bm_maxs[s], bm_starts[s], block_sizes[s], seg_docs[s], k, alpha, max_blocks, seed_blocks,
                    max_terms, allows[s], block_allows[s], poss[s], ub, state, touched, acc, acc_block, terms,
                    weights, bh_s, bh_d, hs, hd, size)
                blocks += b
            else:
                size, p, t = _taat_into(qi, qptr, qidx, qval, toffs[s], pdocss[s], pimps[s], scales[s],
                                        seg_docs[s], k, allows[s], poss[s], acc, mark, lst, hs, hd, size,
                                        SLICE_DOCS)
            postings += p
            seen += t
        _heap_emit(hs, hd, size, out_docs[qi], out_scores[qi])
        stats[qi, 0] = postings
        stats[qi, 1] = blocks
        stats[qi, 2] = seen


# ----------------------------------------------------------------------------- pruned TAAT + rescoring


@njit(cache=True)
def _pruned_one(qi, qptr, qidx, qval, fptr, fterms, fimp, ctoff, cdocs, cimp, scale, k, max_terms, n_cand, allow,
                acc, mark, qdense, terms, weights, cs, cd, hs, hd, out_docs, out_scores, stats):
    m = _select_terms(qi, qptr, qidx, qval, max_terms, terms, weights)
    n_docs = acc.shape[0]
    nopos = np.empty(0, dtype=np.int32)
    postings = 0
    for i in range(m):
        postings += ctoff[terms[i] + 1] - ctoff[terms[i]]
    dense = postings * DENSE_POSTINGS >= n_docs
    # partial scores only rank candidates (their scores are recomputed exactly below), so the scale
    # is folded into the query weight: one multiplication per posting
    for i in range(m):
        t = terms[i]
        if dense:
            _accumulate(ctoff[t], ctoff[t + 1], weights[i] * scale, cdocs, cimp, np.float32(1), acc)
        else:
            _accumulate_marking(ctoff[t], ctoff[t + 1], weights[i] * scale, cdocs, cimp, np.float32(1), acc, mark)
    # the n_cand best documents by partial score
    csize, drained = _drain(acc, mark, dense, n_docs, cs, cd, 0, n_cand, allow, nopos)
    # their exact scores from the forward index: each document's terms ascend, so every score is
    # summed in ascending term-id order, as the exact engines sum it (terms outside the query add 0)
    for j in range(qptr[qi], qptr[qi + 1]):
        qdense[qidx[j]] = qval[j]
    size = 0
    ts = np.float32(0)
    td = np.int32(0)
    for c in range(csize):
        d = cd[c]
        s = np.float32(0)
        for p in range(fptr[d], fptr[d + 1]):
            w = qdense[fterms[p]]
            if w != 0:
                s += w * (np.float32(fimp[p]) * scale)
        if s > 0 and _admits(size, k, s, d, ts, td):
            size = _heap_push(hs, hd, size, k, s, d)
            if size == k:
                ts = hs[0]
                td = hd[0]
    for j in range(qptr[qi], qptr[qi + 1]):
        qdense[qidx[j]] = 0
    _heap_emit(hs, hd, size, out_docs[qi], out_scores[qi])
    stats[qi, 0] = postings
    stats[qi, 1] = csize
    stats[qi, 2] = drained


@njit(parallel=True, cache=True)
def pruned_search(qptr, qidx, qval, fptr, fterms, fimp, ctoff, cdocs, cimp, scale, n_docs, dim, k, max_terms,
                  n_cand, allow, n_threads, accs, marks, out_docs, out_scores, stats):
    """Approximate search: candidates from pruned postings, then exact re-scoring.

    Term-at-a-time over each query's ``max_terms`` heaviest terms (all if 0) in the candidate lists
    ``ctoff/cdocs/cimp`` (the full lists, or lists statically pruned to their highest impacts, see
    :func:`static_prune_fill`) gives partial scores; the ``n_cand`` best documents by partial score
    are then scored exactly against the forward index ``fptr/fterms/fimp`` (documents' terms
    ascending, see :func:`transpose_postings`), and the best ``k`` of them are returned with their
    exact scores. Misses are documents that the kept terms and postings alone do not rank among the
    candidates. ``allow``, ``accs`` and ``marks`` as for :func:`taat_search` (only allowed documents become
    candidates).
    stats[q] = (candidate postings read, candidates re-scored, chunks drained).
    """
    nq = qptr.shape[0] - 1
    nt = min(n_threads, max(nq, 1))
    max_m = _longest_row(qptr)
    for slot in prange(nt):
        acc = accs[slot]
        mark = marks[slot]
        qdense = np.zeros(dim, dtype=np.float32)
        terms = np.empty(max_m, dtype=np.int32)
        weights = np.empty(max_m, dtype=np.float32)
        cs = np.empty(n_cand, dtype=np.float32)
        cd = np.empty(n_cand, dtype=np.int32)
        hs = np.empty(k, dtype=np.float32)
        hd = np.empty(k, dtype=np.int32)
        for qi in range(slot, nq, nt):
            _pruned_one(qi, qptr, qidx, qval, fptr, fterms, fimp, ctoff, cdocs, cimp, scale, k, max_terms, n_cand,
                        allow, acc, mark, qdense, terms, weights, cs, cd, hs, hd, out_docs, out_scores, stats)


@njit(cache=True)
def transpose_postings(toff, pdocs, pimp, fptr, fterms, fimp, window):
    """The forward index (per document, its terms ascending and their impacts) from the posting
    lists; ``fptr`` holds the documents' row offsets (prefix sums of their non-zero counts).

    Documents are filled a range at a time, each range about ``window`` forward entries, so that the
    scattered writes stay in cache; every term's postings are still read once, in order. Returns False,
    leaving the output incomplete, when a document has more or fewer postings than its row holds (a
    corrupt index)."""
    n_docs = fptr.shape[0] - 1
    dim = toff.shape[0] - 1
    cursor = fptr[:n_docs].copy()
    nxt = toff[:dim].copy()  # per term, its first posting not yet placed
    lo_d = 0
    while lo_d < n_docs:
        hi_d = lo_d + 1
        while hi_d < n_docs and fptr[hi_d + 1] - fptr[lo_d] <= window:
            hi_d += 1
        for t in range(dim):
            p = nxt[t]
            end = toff[t + 1]
            while p < end and pdocs[p] < hi_d:
                d = pdocs[p]
                c = cursor[d]
                if c >= fptr[d + 1]:
                    return False
                fterms[c] = t
                fimp[c] = pimp[p]
                cursor[d] = c + 1
                p += 1
            nxt[t] = p
        lo_d = hi_d
    for d in range(n_docs):
        if cursor[d] != fptr[d + 1]:
            return False
    for t in range(dim):
        if nxt[t] != toff[t + 1]:
            return False
    return True


# ----------------------------------------------------------------------------- static pruning


@njit(parallel=True, cache=True)
def static_prune_count(toff, max_postings, counts):
    """counts[t] = postings term ``t`` keeps when pruned to its ``max_postings`` highest impacts."""
    dim = toff.shape[0] - 1
    for t in prange(dim):
        counts[t] = min(toff[t + 1] - toff[t], max_postings)


@njit(parallel=True, cache=True)
def static_prune_fill(toff, pdocs, pimp, max_postings, byte_codes, out_off, out_docs, out_imp):
    """Each term's ``max_postings`` highest-impact postings, kept in document order (Seismic's static
    pruning). Among postings equal to the cut-off impact, those of smaller document index are kept.
    ``byte_codes``: impacts are 8-bit codes, whose cut-off comes from a 256-bin histogram (one pass)
    rather than a selection."""
    dim = toff.shape[0] - 1
    for t in prange(dim):
        lo = toff[t]
        n = toff[t + 1] - lo
        o = out_off[t]
        if n <= max_postings:
            for i in range(n):
                out_docs[o + i] = pdocs[lo + i]
                out_imp[o + i] = pimp[lo + i]
            continue
        if byte_codes:
            hist = np.zeros(256, dtype=np.int64)
            for i in range(n):
                hist[np.int64(pimp[lo + i])] += 1
            c = 255
            kept = hist[c]
            while kept < max_postings:
                c -= 1
                kept += hist[c]
            cut = c  # the kept minimum
            above = kept - hist[c]
        else:
            cut = np.partition(pimp[lo:lo + n], n - max_postings)[n - max_postings]  # the kept minimum
            above = 0
            for i in range(n):
                if pimp[lo + i] > cut:
                    above += 1
        ties_left = max_postings - above
        j = o
        end = o + max_postings
        for i in range(n):  # branch-free: every posting is written, the cursor moves past the kept ones
            v = pimp[lo + i]
            tie = v == cut
            keep = (v > cut) | (tie & (ties_left > 0))
            ties_left -= tie & keep
            if j < end:
                out_docs[j] = pdocs[lo + i]
                out_imp[j] = v
            j += keep


# ----------------------------------------------------------------------------- build helpers


@njit(parallel=True, cache=True)
def count_term_blocks(toff, pdocs, block_size, counts):
    """counts[t] = number of distinct blocks in term t's posting list (docs ascending)."""
    dim = toff.shape[0] - 1
    for t in prange(dim):
        c = 0
        prev = -1
        for p in range(toff[t], toff[t + 1]):
            b = pdocs[p] // block_size
            if b != prev:
                c += 1
                prev = b
        counts[t] = c


@njit(parallel=True, cache=True)
def fill_term_blocks(toff, pdocs, pimp, scale, block_size, bm_off, bm_blocks, bm_max, bm_start):
    """Block ids, per-block maximum impact (dequantised) and posting start (relative to the term's
    first posting) of every term's blocks."""
    dim = toff.shape[0] - 1
    for t in prange(dim):
        j = bm_off[t] - 1
        prev = -1
        first = toff[t]
        for p in range(first, toff[t + 1]):
            b = pdocs[p] // block_size
            v = np.float32(pimp[p]) * scale
            if b != prev:
                j += 1
                bm_blocks[j] = b
                bm_max[j] = v
                bm_start[j] = p - first
                prev = b
            elif v > bm_max[j]:
                bm_max[j] = v


@njit(parallel=True, cache=True)
def term_maxima(toff, pimp, scale, out):
    dim = toff.shape[0] - 1
    for t in prange(dim):
        m = np.float32(0)
        for p in range(toff[t], toff[t + 1]):
            v = np.float32(pimp[p]) * scale
            if v > m:
                m = v
        out[t] = m


@njit(cache=True)
def scatter_shard(shard_toff, shard_docs, shard_imp, doc_offset, cursor, out_docs, out_imp):
    """Append one shard's term-major postings at each term's write cursor (shards in doc order)."""
    dim = shard_toff.shape[0] - 1
    for t in range(dim):
        c = cursor[t]
        for p in range(shard_toff[t], shard_toff[t + 1]):
            out_docs[c] = shard_docs[p] + doc_offset
            out_imp[c] = shard_imp[p]
            c += 1
        cursor[t] = c


@njit(parallel=True, cache=True)
def check_postings(toff, pdocs, pimp, scale, n_docs, has_bm, block_size, bm_off, bm_blocks, bm_max, bm_start,
                   term_max, faults):
    """One pass over every posting, parallel over terms, checking what the search kernels trust (they do no
    bounds checks). Offsets must already run from 0 to the posting count (checked by the caller).

    ``faults[t]`` (int8 ``[dim]``, zeros) gets the first broken rule of term ``t``: 1 term offsets decrease,
    2 a document index outside ``[0, n_docs)``, 3 documents not ascending within the term, 4 an impact not
    finite and positive, 5 block offsets decrease or pass the block entries, 6 block entries that do not
    describe the postings (block id, start, count), 7 a block maximum that is not the block's largest
    impact, 8 a term maximum that is not the list's largest impact.
    """
    dim = toff.shape[0] - 1
    nnz = pdocs.shape[0]
    nbm = bm_blocks.shape[0]
    for t in prange(dim):
        faults[t] = _check_term(t, toff, pdocs, pimp, scale, n_docs, has_bm, block_size, bm_off, bm_blocks,
                                bm_max, bm_start, term_max, nnz, nbm)


@njit(cache=True)
def _check_term(t, toff, pdocs, pimp, scale, n_docs, has_bm, block_size, bm_off, bm_blocks, bm_max, bm_start,
                term_max, nnz, nbm):
    lo = toff[t]
    hi = toff[t + 1]
    if hi < lo or hi > nnz or lo < 0:
        return 1
    if has_bm:
        if bm_off[t + 1] < bm_off[t] or bm_off[t + 1] > nbm or bm_off[t] < 0:
            return 5
    elif bm_off[t + 1] != 0:
        return 5
    j = bm_off[t] - 1
    prev_block = -1
    prev_doc = -1
    tmax = np.float32(0)
    bmax = np.float32(0)
    for p in range(lo, hi):
        d = pdocs[p]
        if d < 0 or d >= n_docs:
            return 2
        if d <= prev_doc:
            return 3
        prev_doc = d
        raw = pimp[p]
        v = np.float32(raw) * scale
        if not (raw > 0) or not (v < np.inf):
            return 4
        if v > tmax:
            tmax = v
        if has_bm:
            b = d // block_size
            if b != prev_block:
                if j >= bm_off[t] and bm_max[j] != bmax:
                    return 7
                j += 1
                if j >= bm_off[t + 1] or bm_blocks[j] != b or bm_start[j] != p - lo:
                    return 6
                prev_block = b
                bmax = v
            elif v > bmax:
                bmax = v
    if has_bm:
        if j >= bm_off[t] and bm_max[j] != bmax:
            return 7
        if j + 1 != bm_off[t + 1]:
            return 6
    if term_max[t] != tmax:
        return 8
    return 0
