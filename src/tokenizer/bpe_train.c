/* bpe_train.c: learning a byte-level BPE vocabulary from text.
 *
 * 1. Pre-split the text exactly as encoding does, and count the distinct pieces ("words") in a
 *    hash table. BPE never merges across pieces, so a word seen 10,000 times is worked on once,
 *    weighted by its count.
 * 2. Lay the words end to end as linked lists of symbols (initially their bytes), count every
 *    adjacent pair (weighted by the word's count) and remember the positions where it stands.
 * 3. Repeatedly take the most frequent pair from a max-heap (lazy deletion: an entry whose count
 *    is out of date is re-pushed with the current one, which can only be lower), merge it at its
 *    positions, and update the counts of the neighbouring pairs there. A merge costs the number of
 *    its occurrences, not the length of the words holding them, so a megabyte-long piece (a DNA
 *    line, a run of spaces) costs no more than many short ones. Only pairs that involve the new
 *    symbol gain counts; they are pushed after the step.
 * Ties go to the lowest (left id, right id), so training is deterministic.
 *
 * The vocabulary: <|unk|>=0, <|bos|>=1, <|eos|>=2, <|pad|>=3 (CONTROL), the 256 bytes in byte
 * order (4..259), then one token per merge in merge order. Two rules keep the file loadable by
 * llama.cpp, which refuses duplicate token texts: a merge whose bytes equal an existing token's
 * (two merge paths to one string) reuses that token, so merges may outnumber new tokens; and a
 * merge that would spell a special token's text ("<|eos|>") is never made, so that text in input
 * stays ordinary text.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

#define N_SPECIAL 4
#define FIRST_BYTE N_SPECIAL
#define FIRST_MERGE (N_SPECIAL + 256)

static const char *const special_text[N_SPECIAL] = {"<|unk|>", "<|bos|>", "<|eos|>", "<|pad|>"};

typedef struct {
    uint32_t *w;
    uint32_t n, cap;
} occ_list;

typedef struct {
    int64_t cnt;
    int32_t pair;
} heap_ent;

enum { PAIR_OPEN = 0, PAIR_BANNED = 1, PAIR_MERGED = 2 };

typedef struct {
    /* words: the distinct pieces of 2+ bytes, laid end to end. Each byte position holds a symbol
     * in a linked list per word; a merge folds the right symbol into the left (sym = -1). */
    int32_t *sym;       /* [n_pos] symbol at the position, -1 once folded away */
    int32_t *nxt, *prv; /* [n_pos] neighbours in the word, -1 at its ends */
    uint32_t *wid;      /* [n_pos] the word a position belongs to */
    int64_t *w_cnt;     /* [n_words] how often the word occurs */
    size_t n_pos, n_words;

    /* pairs */
    int32_t *pl, *pr;   /* left, right symbol */
    int64_t *pcnt;
    occ_list *pocc;     /* positions where the pair was formed (some since changed) */
    uint32_t *pstamp;   /* step that last touched the pair */
    uint8_t *state;     /* PAIR_* */
    size_t n_pairs, pairs_cap;
    int32_t *pslots;    /* open addressing over (pl, pr), -1 empty */
    size_t pslot_cap;

    heap_ent *heap;
    size_t heap_n, heap_cap;

    /* tokens: raw bytes */
    char *tb;
    size_t tb_len, tb_cap;
    uint64_t *t_off;
    uint32_t *t_len;
    int32_t n_tok, tok_cap;
    int32_t *tslots;    /* open addressing over token bytes, -1 empty */
    size_t tslot_cap;

    /* merges (left, right) in order */
    int32_t *ml, *mr;
    size_t n_merges, merges_cap;

    /* pairs touched in this step */
    int32_t *touched;
    size_t n_touched, touched_cap;
} trainer;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- pairs ---- */

static void pslots_place(trainer *tr, int32_t p) {
    size_t mask = tr->pslot_cap - 1;
    size_t i = (size_t)slm_tok_hash_u64(slm_tok_pair_key(tr->pl[p], tr->pr[p])) & mask;
    while (tr->pslots[i] >= 0) i = (i + 1) & mask;
    tr->pslots[i] = p;
}

static int pair_find(const trainer *tr, int32_t l, int32_t r) {
    if (!tr->pslot_cap) return -1;
    size_t mask = tr->pslot_cap - 1;
    for (size_t i = (size_t)slm_tok_hash_u64(slm_tok_pair_key(l, r)) & mask;; i = (i + 1) & mask) {
        int32_t p = tr->pslots[i];
        if (p < 0) return -1;
        if (tr->pl[p] == l && tr->pr[p] == r) return p;
    }
}

/* The pair (l, r), added with count 0 when new; -1 on out of memory. */
static int32_t pair_get(trainer *tr, int32_t l, int32_t r) {
    int32_t p = pair_find(tr, l, r);
    if (p >= 0) return p;
    if (tr->n_pairs >= (size_t)INT32_MAX) return -1;
    if (tr->n_pairs == tr->pairs_cap) {
        size_t c = tr->pairs_cap ? tr->pairs_cap * 2 : 4096;
        int32_t *a = realloc(tr->pl, c * sizeof *a);
        if (!a) return -1;
        tr->pl = a;
        if (!(a = realloc(tr->pr, c * sizeof *a))) return -1;
        tr->pr = a;
        int64_t *b = realloc(tr->pcnt, c * sizeof *b);
        if (!b) return -1;
        tr->pcnt = b;
        occ_list *o = realloc(tr->pocc, c * sizeof *o);
        if (!o) return -1;
        tr->pocc = o;
        uint32_t *s = realloc(tr->pstamp, c * sizeof *s);
        if (!s) return -1;
        tr->pstamp = s;
        uint8_t *bn = realloc(tr->state, c);
        if (!bn) return -1;
        tr->state = bn;
        tr->pairs_cap = c;
    }
    if (2 * (tr->n_pairs + 1) > tr->pslot_cap) {
        size_t c = tr->pslot_cap ? tr->pslot_cap * 2 : 8192;
        int32_t *sl = malloc(c * sizeof *sl);
        if (!sl) return -1;
        free(tr->pslots);
        tr->pslots = sl;
        tr->pslot_cap = c;
        memset(sl, 0xff, c * sizeof *sl);
        for (size_t q = 0; q < tr->n_pairs; q++) pslots_place(tr, (int32_t)q);
    }
    p = (int32_t)tr->n_pairs++;
    tr->pl[p] = l;
    tr->pr[p] = r;
    tr->pcnt[p] = 0;
    tr->pocc[p] = (occ_list){0};
    tr->pstamp[p] = 0;
    tr->state[p] = PAIR_OPEN;
    pslots_place(tr, p);
    return p;
}

static int occ_add(occ_list *o, uint32_t w) {
    if (o->n && o->w[o->n - 1] == w) return 0;
    if (o->n == o->cap) {
        uint32_t c = o->cap ? o->cap * 2 : 4;
        if (c < o->cap) return -1;
        uint32_t *p = realloc(o->w, (size_t)c * sizeof *p);
        if (!p) return -1;
        o->w = p;
        o->cap = c;
    }
    o->w[o->n++] = w;
    return 0;
}

/* ---- heap: highest count first, then lowest (left, right) ---- */

static int ent_before(const trainer *tr, heap_ent a, heap_ent b) {
    if (a.cnt != b.cnt) return a.cnt > b.cnt;
    if (tr->pl[a.pair] != tr->pl[b.pair]) return tr->pl[a.pair] < tr->pl[b.pair];
    return tr->pr[a.pair] < tr->pr[b.pair];
}

static int heap_push(trainer *tr, heap_ent e) {
    if (grow((void **)&tr->heap, &tr->heap_cap, tr->heap_n + 1, sizeof *tr->heap)) return -1;
    size_t i = tr->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ent_before(tr, e, tr->heap[parent])) break;
        tr->heap[i] = tr->heap[parent];
        i = parent;
    }
    tr->heap[i] = e;
    return 0;
}

static heap_ent heap_pop(trainer *tr) {
    heap_ent top = tr->heap[0], last = tr->heap[--tr->heap_n];
    size_t i = 0, n = tr->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ent_before(tr, tr->heap[c + 1], tr->heap[c])) c++;
        if (!ent_before(tr, tr->heap[c], last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n) tr->heap[i] = last;
    return top;
}

/* ---- tokens ---- */

static int32_t tok_find(const trainer *tr, const char *b, size_t n, size_t *slot) {
    size_t mask = tr->tslot_cap - 1;
    size_t i = (size_t)slm_tok_hash_bytes(b, n) & mask;
    for (;; i = (i + 1) & mask) {
        int32_t id = tr->tslots[i];
        if (id < 0) break;
        if (tr->t_len[id] == n && !memcmp(tr->tb + tr->t_off[id], b, n)) {
            *slot = i;
            return id;
        }
    }
    *slot = i;
    return -1;
}

/* Adds a token with bytes b[0..n) (not already present); returns its id or -1. */
static int32_t tok_add(trainer *tr, const char *b, size_t n, size_t slot) {
    size_t need = tr->tb_len + n;
    if (need > tr->tb_cap) {
        size_t c = tr->tb_cap ? tr->tb_cap : 4096;
        while (c < need) c *= 2;
        char *p = realloc(tr->tb, c);
        if (!p) return -1;
        tr->tb = p;
        tr->tb_cap = c;
    }
    int32_t id = tr->n_tok;
    if (id >= tr->tok_cap) return -1; /* sized ahead */
    memcpy(tr->tb + tr->tb_len, b, n);
    tr->t_off[id] = tr->tb_len;
    tr->t_len[id] = (uint32_t)n;
    tr->tb_len += n;
    tr->tslots[slot] = id;
    tr->n_tok++;
    return id;
}

static void trainer_free(trainer *tr) {
    free(tr->sym);
    free(tr->nxt);
    free(tr->prv);
    free(tr->wid);
    free(tr->w_cnt);
    for (size_t p = 0; p < tr->n_pairs; p++) free(tr->pocc[p].w);
    free(tr->pl);
    free(tr->pr);
    free(tr->pcnt);
    free(tr->pocc);
    free(tr->pstamp);
    free(tr->state);
    free(tr->pslots);
    free(tr->heap);
    free(tr->tb);
    free(tr->t_off);
    free(tr->t_len);
    free(tr->tslots);
    free(tr->ml);
    free(tr->mr);
    free(tr->touched);
}

/* ---- step 1: distinct pieces ---- */

typedef struct {
    uint64_t *off;   /* into the text */
    uint32_t *len;
    int64_t *cnt;
    size_t n, cap;
    int32_t *slots;  /* -1 empty */
    size_t slot_cap;
} piece_table;

static void piece_table_free(piece_table *pt) {
    free(pt->off);
    free(pt->len);
    free(pt->cnt);
    free(pt->slots);
}

static int piece_add(piece_table *pt, const char *text, size_t start, size_t n) {
    if (2 * (pt->n + 1) > pt->slot_cap) {
        size_t c = pt->slot_cap ? pt->slot_cap * 2 : 65536;
        int32_t *s = malloc(c * sizeof *s);
        if (!s) return -1;
        memset(s, 0xff, c * sizeof *s);
        for (size_t q = 0; q < pt->n; q++) {
            size_t i = (size_t)slm_tok_hash_bytes(text + pt->off[q], pt->len[q]) & (c - 1);
            while (s[i] >= 0) i = (i + 1) & (c - 1);
            s[i] = (int32_t)q;
        }
        free(pt->slots);
        pt->slots = s;
        pt->slot_cap = c;
    }
    size_t mask = pt->slot_cap - 1;
    size_t i = (size_t)slm_tok_hash_bytes(text + start, n) & mask;
    for (;; i = (i + 1) & mask) {
        int32_t q = pt->slots[i];
        if (q < 0) break;
        if (pt->len[q] == n && !memcmp(text + pt->off[q], text + start, n)) {
            pt->cnt[q]++;
            return 0;
        }
    }
    if (pt->n >= (size_t)INT32_MAX) return -1;
    if (pt->n == pt->cap) {
        size_t c = pt->cap ? pt->cap * 2 : 16384;
        uint64_t *o = realloc(pt->off, c * sizeof *o);
        if (!o) return -1;
        pt->off = o;
        uint32_t *l = realloc(pt->len, c * sizeof *l);
        if (!l) return -1;
        pt->len = l;
        int64_t *k = realloc(pt->cnt, c * sizeof *k);
        if (!k) return -1;
        pt->cnt = k;
        pt->cap = c;
    }
    pt->off[pt->n] = start;
    pt->len[pt->n] = (uint32_t)n;
    pt->cnt[pt->n] = 1;
    pt->slots[i] = (int32_t)pt->n++;
    return 0;
}

/* ---- step 3: one merge applied where its pair stands ---- */

static int touch(trainer *tr, int32_t p, uint32_t step) {
    if (tr->pstamp[p] == step) return 0;
    tr->pstamp[p] = step;
    if (grow((void **)&tr->touched, &tr->touched_cap, tr->n_touched + 1, sizeof *tr->touched))
        return -1;
    tr->touched[tr->n_touched++] = p;
    return 0;
}

static int add_count(trainer *tr, int32_t l, int32_t r, int64_t c, uint32_t pos, uint32_t step) {
    int32_t p = pair_get(tr, l, r);
    if (p < 0) return -1;
    tr->pcnt[p] += c;
    if (occ_add(&tr->pocc[p], pos) || touch(tr, p, step)) return -1;
    return 0;
}

static void sub_count(trainer *tr, int32_t l, int32_t r, int64_t c) {
    int32_t p = pair_find(tr, l, r);
    SLM_ASSERT(p >= 0);
    tr->pcnt[p] -= c;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Merges pair p = (l, r) into nt wherever it still stands, updating the neighbouring pairs'
 * counts. Positions go in increasing order, so within a word the merge runs left to right
 * ("a a a" becomes "aa a") and each fold sees its left neighbour already merged. The cost is the
 * number of recorded positions, however long the words. */
static int merge_pair(trainer *tr, int32_t p, int32_t nt, uint32_t step) {
    int32_t l = tr->pl[p], r = tr->pr[p];
    occ_list *o = &tr->pocc[p];
    qsort(o->w, o->n, sizeof *o->w, cmp_u32);
    for (uint32_t k = 0; k < o->n; k++) {
        uint32_t i = o->w[k];
        if (k && i == o->w[k - 1]) continue;
        int32_t j = tr->nxt[i];
        if (tr->sym[i] != l || j < 0 || tr->sym[j] != r) continue; /* changed since */
        int64_t c = tr->w_cnt[tr->wid[i]];
        int32_t a = tr->prv[i], b = tr->nxt[j];
        if (a >= 0) {
            sub_count(tr, tr->sym[a], l, c);
            if (add_count(tr, tr->sym[a], nt, c, (uint32_t)a, step)) return -1;
        }
        if (b >= 0) {
            sub_count(tr, r, tr->sym[b], c);
            if (add_count(tr, nt, tr->sym[b], c, i, step)) return -1;
            tr->prv[b] = (int32_t)i;
        }
        tr->sym[i] = nt;
        tr->sym[j] = -1;
        tr->nxt[i] = b;
        o = &tr->pocc[p]; /* add_count never adds to p (nt is neither l nor r), but re-read */
    }
    return 0;
}

static int is_special_text(const char *b, size_t n) {
    for (int i = 0; i < N_SPECIAL; i++)
        if (strlen(special_text[i]) == n && !memcmp(special_text[i], b, n)) return 1;
    return 0;
}

/* ---- vocabulary out ---- */

static slm_status build_tokenizer(const trainer *tr, slm_tokenizer **out, slm_err *err) {
    size_t n_tok = (size_t)tr->n_tok, n_m = tr->n_merges;
    slm_tok_str *toks = malloc(n_tok * sizeof *toks);
    slm_tok_str *merges = malloc((n_m ? n_m : 1) * sizeof *merges);
    int32_t *types = malloc(n_tok * sizeof *types);
    /* mapped text takes at most 2 bytes per raw byte; merges add a space */
    size_t cap = 0;
    for (size_t i = 0; i < n_tok; i++) cap += 2 * (size_t)tr->t_len[i] + 8;
    for (size_t k = 0; k < n_m; k++)
        cap += 2 * ((size_t)tr->t_len[tr->ml[k]] + tr->t_len[tr->mr[k]]) + 1;
    char *buf = malloc(cap + 1);
    slm_status st;
    if (!toks || !merges || !types || !buf) {
        st = slm_err_set(err, SLM_ERR_NOMEM, "tokenizer train: out of memory writing the vocabulary");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_tok; i++) {
        char *p = buf + k;
        size_t n;
        if (i < N_SPECIAL) {
            n = strlen(special_text[i]);
            memcpy(p, special_text[i], n);
            types[i] = SLM_TOKEN_CONTROL;
        } else {
            n = slm_bu_encode(tr->tb + tr->t_off[i], tr->t_len[i], p);
            types[i] = SLM_TOKEN_NORMAL;
        }
        toks[i] = (slm_tok_str){p, n};
        k += n;
    }
    for (size_t m = 0; m < n_m; m++) {
        char *p = buf + k;
        size_t n = slm_bu_encode(tr->tb + tr->t_off[tr->ml[m]], tr->t_len[tr->ml[m]], p);
        p[n++] = ' ';
        n += slm_bu_encode(tr->tb + tr->t_off[tr->mr[m]], tr->t_len[tr->mr[m]], p + n);
        merges[m] = (slm_tok_str){p, n};
        k += n;
    }
    st = slm_tok_build(toks, n_tok, types, merges, n_m, "tokenizer train", out, err);
    if (st == SLM_OK) {
        (*out)->unk = 0;
        (*out)->bos = 1;
        (*out)->eos = 2;
        (*out)->pad = 3;
        (*out)->add_bos = true;
    }
done:
    free(toks);
    free(merges);
    free(types);
    free(buf);
    return st;
}

/* ---- the whole ---- */

#define OOM() slm_err_set(err, SLM_ERR_NOMEM, "tokenizer train: out of memory")

slm_status slm_tokenizer_train(const char *text, size_t len, const slm_tokenizer_train_opts *opts,
                               slm_tokenizer **out, slm_err *err) {
    *out = NULL;
    if (!opts) return slm_err_set(err, SLM_ERR_ARG, "tokenizer train: no options");
    if (opts->vocab_size < FIRST_MERGE || opts->vocab_size > (1 << 24))
        return slm_err_set(err, SLM_ERR_ARG,
                           "tokenizer train: vocab size %d is outside [%d, %d] (4 special tokens "
                           "and 256 bytes come first)", opts->vocab_size, FIRST_MERGE, 1 << 24);
    if (!text && len) return slm_err_set(err, SLM_ERR_ARG, "tokenizer train: NULL text");
    if (!text) text = "";
    if (opts->max_bytes && opts->max_bytes < len) {
        len = opts->max_bytes; /* back off to the start of a UTF-8 character */
        for (int k = 0; k < 3 && len > 0 && ((uint8_t)text[len] & 0xC0) == 0x80; k++) len--;
    }

    trainer tr = {0};
    piece_table pt = {0};
    slm_status st = SLM_OK;
    slm_pretok *pre = slm_pretok_new(err);
    if (!pre) return err ? err->code : SLM_ERR_NOMEM;

    /* 1. distinct pieces */
    slm_pretok_iter it;
    st = slm_pretok_iter_init(&it, pre, text, len, err);
    if (st != SLM_OK) goto done;
    size_t start, n;
    int rc;
    while ((rc = slm_pretok_iter_next(&it, &start, &n, err)) > 0) {
        if (n < 2) continue; /* nothing to merge inside one byte */
        if (n > UINT32_MAX / 2 || piece_add(&pt, text, start, n)) {
            rc = -2;
            break;
        }
    }
    slm_pretok_iter_done(&it);
    if (rc == -1) {
        st = err ? err->code : SLM_ERR_FORMAT;
        goto done;
    }
    if (rc == -2) {
        st = OOM();
        goto done;
    }

    /* 2. words and pair counts */
    size_t total_sym = 0;
    for (size_t q = 0; q < pt.n; q++) total_sym += pt.len[q];
    if (total_sym >= (size_t)INT32_MAX) {
        st = slm_err_set(err, SLM_ERR_RANGE,
                         "tokenizer train: the distinct pieces of the text hold %zu bytes; at "
                         "most %d fit (use --max-bytes)", total_sym, INT32_MAX - 1);
        goto done;
    }
    tr.n_words = pt.n;
    tr.n_pos = total_sym;
    size_t np = total_sym ? total_sym : 1;
    tr.sym = malloc(np * sizeof *tr.sym);
    tr.nxt = malloc(np * sizeof *tr.nxt);
    tr.prv = malloc(np * sizeof *tr.prv);
    tr.wid = malloc(np * sizeof *tr.wid);
    tr.w_cnt = malloc((pt.n ? pt.n : 1) * sizeof *tr.w_cnt);
    tr.tok_cap = opts->vocab_size;
    tr.t_off = malloc((size_t)tr.tok_cap * sizeof *tr.t_off);
    tr.t_len = malloc((size_t)tr.tok_cap * sizeof *tr.t_len);
    tr.tslot_cap = 64;
    while (tr.tslot_cap < 2 * (size_t)tr.tok_cap) tr.tslot_cap *= 2;
    tr.tslots = malloc(tr.tslot_cap * sizeof *tr.tslots);
    if (!tr.sym || !tr.nxt || !tr.prv || !tr.wid || !tr.w_cnt || !tr.t_off || !tr.t_len ||
        !tr.tslots) {
        st = OOM();
        goto done;
    }
    memset(tr.tslots, 0xff, tr.tslot_cap * sizeof *tr.tslots);
    for (int i = 0; i < N_SPECIAL; i++) { /* specials own ids 0..3; their bytes are not tokens */
        tr.t_off[i] = 0;
        tr.t_len[i] = 0;
    }
    tr.n_tok = N_SPECIAL;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        size_t slot;
        tok_find(&tr, &c, 1, &slot);
        if (tok_add(&tr, &c, 1, slot) < 0) {
            st = OOM();
            goto done;
        }
    }
    size_t off = 0;
    for (size_t q = 0; q < pt.n; q++) {
        tr.w_cnt[q] = pt.cnt[q];
        const uint8_t *b = (const uint8_t *)text + pt.off[q];
        uint32_t n_b = pt.len[q];
        for (uint32_t i = 0; i < n_b; i++) {
            size_t at = off + i;
            tr.sym[at] = FIRST_BYTE + b[i];
            tr.prv[at] = i ? (int32_t)at - 1 : -1;
            tr.nxt[at] = i + 1 < n_b ? (int32_t)at + 1 : -1;
            tr.wid[at] = (uint32_t)q;
        }
        for (uint32_t i = 0; i + 1 < n_b; i++) {
            int32_t p = pair_get(&tr, tr.sym[off + i], tr.sym[off + i + 1]);
            if (p < 0 || occ_add(&tr.pocc[p], (uint32_t)(off + i))) {
                st = OOM();
                goto done;
            }
            tr.pcnt[p] += pt.cnt[q];
        }
        off += n_b;
    }
    piece_table_free(&pt);
    memset(&pt, 0, sizeof pt);
    for (size_t p = 0; p < tr.n_pairs; p++)
        if (heap_push(&tr, (heap_ent){tr.pcnt[p], (int32_t)p})) {
            st = OOM();
            goto done;
        }

    /* 3. merges */
    int total = opts->vocab_size - FIRST_MERGE, every = total / 100 > 0 ? total / 100 : 1;
    char *nb = NULL;
    size_t nb_cap = 0;
    uint32_t step = 0;
    int reported = -1;
    while (tr.n_tok < opts->vocab_size && tr.heap_n) {
        heap_ent e = heap_pop(&tr);
        int32_t p = e.pair;
        if (tr.state[p] == PAIR_BANNED || tr.pcnt[p] <= 0) continue;
        if (tr.pcnt[p] != e.cnt) { /* out of date: counts only fall, so re-queue lower */
            if (heap_push(&tr, (heap_ent){tr.pcnt[p], p})) goto oom;
            continue;
        }
        int32_t l = tr.pl[p], r = tr.pr[p];
        size_t ln = tr.t_len[l], rn = tr.t_len[r];
        if (grow((void **)&nb, &nb_cap, ln + rn, 1)) goto oom;
        memcpy(nb, tr.tb + tr.t_off[l], ln);
        memcpy(nb + ln, tr.tb + tr.t_off[r], rn);
        if (is_special_text(nb, ln + rn)) {
            tr.state[p] = PAIR_BANNED;
            continue;
        }
        size_t slot;
        int32_t nt = tok_find(&tr, nb, ln + rn, &slot);
        int new_token = nt < 0;
        if (new_token && (nt = tok_add(&tr, nb, ln + rn, slot)) < 0) goto oom;
        if (tr.state[p] != PAIR_MERGED) { /* a pair met again (see below) keeps its first rank */
            if (grow((void **)&tr.ml, &tr.merges_cap, tr.n_merges + 1, sizeof *tr.ml)) goto oom;
            int32_t *mr = realloc(tr.mr, tr.merges_cap * sizeof *mr);
            if (!mr) goto oom;
            tr.mr = mr;
            tr.ml[tr.n_merges] = l;
            tr.mr[tr.n_merges] = r;
            tr.n_merges++;
            tr.state[p] = PAIR_MERGED;
        }

        step++;
        tr.n_touched = 0;
        if (merge_pair(&tr, p, nt, step)) goto oom;
        /* every occurrence is merged now; (l, r) can form again only where a later merge
         * rebuilds l or r as a duplicate string, and is then merged again under its old rank */
        tr.pcnt[p] = 0;
        free(tr.pocc[p].w);
        tr.pocc[p] = (occ_list){0};
        for (size_t k = 0; k < tr.n_touched; k++) {
            int32_t q = tr.touched[k];
            if (tr.pcnt[q] > 0 && heap_push(&tr, (heap_ent){tr.pcnt[q], q})) goto oom;
        }
        int done_n = tr.n_tok - FIRST_MERGE;
        if (new_token && opts->progress && (done_n % every == 0 || tr.n_tok == opts->vocab_size)) {
            opts->progress(opts->progress_ctx, done_n, total);
            reported = done_n;
        }
    }
    free(nb);
    nb = NULL;
    if (opts->progress && reported != tr.n_tok - FIRST_MERGE) /* stopped early */
        opts->progress(opts->progress_ctx, tr.n_tok - FIRST_MERGE, total);
    st = build_tokenizer(&tr, out, err);
    goto done;
oom:
    free(nb);
    st = OOM();
done:
    piece_table_free(&pt);
    trainer_free(&tr);
    slm_pretok_free(pre);
    return st;
}
