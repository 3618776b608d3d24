/* Channel workloads: ping_pong and channel_mpmc. The exact rules are in
 * ../shared/peers/README.md ("Exact rules"); the Tokio peer
 * (tokio/src/main.rs) is the reference implementation they mirror. */
#include <stdint.h>
#include <stdlib.h>

#include <crew.h>

#include "bench.h"

#define U64_ARG(v) ((void *)(uintptr_t)(v))
#define ARG_U64(p) ((uint64_t)(uintptr_t)(p))

/* ------------------------------------------------------------ ping_pong */

struct pair {
    crew_chan_t *ping, *pong;
    uint64_t rounds;
    int err;  /* First failing channel call of either task, or 0. */
};

static void *ponger(void *arg)
{
    struct pair *p = arg;
    for (uint64_t i = 0; i < p->rounds; i++) {
        uint64_t v;
        int err = crew_chan_recv(p->ping, &v);
        if (!err) {
            v++;
            err = crew_chan_send(p->pong, &v);
        }
        if (err) {
            p->err = err;
            break;
        }
    }
    return NULL;
}

/* Returns its final token (2R when every round went through). */
static void *pinger(void *arg)
{
    struct pair *p = arg;
    uint64_t tok = 0;
    for (uint64_t i = 0; i < p->rounds; i++) {
        int err = crew_chan_send(p->ping, &tok);
        if (!err)
            err = crew_chan_recv(p->pong, &tok);
        if (err) {
            p->err = err;
            break;
        }
        tok++;
    }
    return U64_ARG(tok);
}

int bench_ping_pong(bench_t *b)
{
    const uint64_t pairs = b->size[0], rounds = b->size[1];
    struct pair *p = calloc(pairs, sizeof *p);
    crew_task_t **h = calloc(2 * pairs, sizeof *h);
    if (!p || !h) {
        free(p);
        free(h);
        return bench_fail(b, "no memory for %llu pairs", (unsigned long long)pairs);
    }
    int err = 0;
    uint64_t spawned = 0, sum = 0;

    const uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < pairs && !err; i++) {
        p[i].rounds = rounds;
        err = crew_chan_create(sizeof(uint64_t), 1, NULL, &p[i].ping);
        if (!err)
            err = crew_chan_create(sizeof(uint64_t), 1, NULL, &p[i].pong);
        if (!err)
            err = crew_spawn(ponger, &p[i], NULL, &h[spawned]);
        if (!err)
            spawned++;
        if (!err)
            err = crew_spawn(pinger, &p[i], NULL, &h[spawned]);
        if (!err)
            spawned++;
    }
    /* A failed spawn strands its partner: closing every channel releases it. */
    if (err)
        for (uint64_t i = 0; i < pairs; i++)
            if (p[i].ping && p[i].pong) {
                crew_chan_close(p[i].ping);
                crew_chan_close(p[i].pong);
            }
    for (uint64_t i = 0; i < spawned; i++) {
        void *r = NULL;
        int jerr = crew_join(h[i], &r);
        if (jerr && !err)
            err = jerr;
        sum += ARG_U64(r);
    }
    const uint64_t el = bench_now_ns() - t0;

    for (uint64_t i = 0; i < pairs; i++) {
        if (p[i].err && !err)
            err = p[i].err;
        if (p[i].ping)
            crew_chan_destroy(p[i].ping);
        if (p[i].pong)
            crew_chan_destroy(p[i].pong);
    }
    free(p);
    free(h);
    if (err)
        return bench_fail(b, "channel/spawn: %s", crew_strerror(err));
    if (sum != pairs * 2 * rounds)
        return bench_fail(b, "token sum %llu != %llu", (unsigned long long)sum,
                          (unsigned long long)(pairs * 2 * rounds));
    BENCH_EMIT(b, { "roundtrips_per_s", bench_rate(pairs * rounds, el), 0, "roundtrips/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}

/* ------------------------------------------------------------ channel_mpmc */

struct mpmc {
    crew_chan_t *ch;
    uint64_t msgs, producers;
};

struct producer {
    struct mpmc *m;
    uint64_t k;
};

/* Consumer totals; one per consumer, each on its own line. */
struct consumer {
    _Alignas(64) struct mpmc *m;
    uint64_t sum, count;
    int err;
};

static void *producer(void *arg)
{
    struct producer *p = arg;
    const struct mpmc *m = p->m;
    const uint64_t lo = m->msgs * p->k / m->producers, hi = m->msgs * (p->k + 1) / m->producers;
    for (uint64_t v = lo; v < hi; v++) {
        int err = crew_chan_send(m->ch, &v);
        if (err)
            return U64_ARG((uint64_t)-err);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct consumer *c = arg;
    for (;;) {
        uint64_t v;
        int err = crew_chan_recv(c->m->ch, &v);
        if (err) {
            if (err != CREW_CHAN_CLOSED)
                c->err = err;
            break;
        }
        c->sum += v;
        c->count++;
    }
    return NULL;
}

int bench_channel_mpmc(bench_t *b)
{
    const uint64_t msgs = b->size[0], np = b->size[1], nc = b->size[2], cap = b->size[3];
    struct mpmc m = { .msgs = msgs, .producers = np };
    struct producer *pa = calloc(np, sizeof *pa);
    struct consumer *ca = aligned_alloc(64, nc * sizeof *ca);
    crew_task_t **ph = calloc(np, sizeof *ph), **chs = calloc(nc, sizeof *chs);
    if (!pa || !ca || !ph || !chs) {
        free(pa);
        free(ca);
        free(ph);
        free(chs);
        return bench_fail(b, "no memory");
    }
    int err = 0;
    uint64_t nprod = 0, ncons = 0, sum = 0, count = 0;

    const uint64_t t0 = bench_now_ns();
    err = crew_chan_create(sizeof(uint64_t), cap, NULL, &m.ch);
    for (; !err && ncons < nc; ncons++) {
        ca[ncons] = (struct consumer){ .m = &m };
        err = crew_spawn(consumer, &ca[ncons], NULL, &chs[ncons]);
        if (err)
            break;
    }
    for (; !err && nprod < np; nprod++) {
        pa[nprod] = (struct producer){ .m = &m, .k = nprod };
        err = crew_spawn(producer, &pa[nprod], NULL, &ph[nprod]);
        if (err)
            break;
    }
    for (uint64_t i = 0; i < nprod; i++) {
        void *r = NULL;
        int jerr = crew_join(ph[i], &r);
        if (!err)
            err = jerr ? jerr : -(int)ARG_U64(r);
    }
    if (m.ch)
        crew_chan_close(m.ch);
    for (uint64_t i = 0; i < ncons; i++) {
        int jerr = crew_join(chs[i], NULL);
        if (!err)
            err = jerr ? jerr : ca[i].err;
        sum += ca[i].sum;
        count += ca[i].count;
    }
    const uint64_t el = bench_now_ns() - t0;

    if (m.ch)
        crew_chan_destroy(m.ch);
    free(pa);
    free(ca);
    free(ph);
    free(chs);
    if (err)
        return bench_fail(b, "channel/spawn: %s", crew_strerror(err));
    /* M(M-1)/2 computed exactly, compared modulo 2^64 as the sums wrap. */
    const uint64_t want = (uint64_t)((unsigned __int128)msgs * (msgs - 1) / 2);
    if (count != msgs || sum != want)
        return bench_fail(b, "count %llu (want %llu), sum %llu", (unsigned long long)count,
                          (unsigned long long)msgs, (unsigned long long)sum);
    BENCH_EMIT(b, { "msgs_per_s", bench_rate(msgs, el), 0, "msgs/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}
