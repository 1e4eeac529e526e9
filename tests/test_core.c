/* test_core.c: errors, atomic files, random numbers and the thread pool. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include "slm.h"
#include "util/testutil.h"

static void test_err_set_and_prefix(void **state) {
    (void)state;
    slm_err e;
    slm_err_clear(&e);
    assert_int_equal(slm_err_set(&e, SLM_ERR_FORMAT, "offset %d", 12), SLM_ERR_FORMAT);
    assert_string_equal(e.msg, "offset 12");
    slm_err_prefix(&e, "%s", "x.gguf");
    assert_string_equal(e.msg, "x.gguf: offset 12");
    assert_int_equal(slm_err_set(NULL, SLM_ERR_IO, "ignored"), SLM_ERR_IO);
}

static void test_atomic_write_replaces_whole_file(void **state) {
    (void)state;
    const char *path = tu_tmp_path("atomic.txt");
    slm_atomic_file af;
    TU_OK(slm_atomic_open(&af, path, tu_err()));
    fputs("first", af.f);
    TU_OK(slm_atomic_commit(&af, tu_err()));

    /* an aborted write leaves the old content and no temporary file behind */
    TU_OK(slm_atomic_open(&af, path, tu_err()));
    fputs("second, never committed", af.f);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", af.tmp_path);
    slm_atomic_abort(&af);
    assert_int_not_equal(access(tmp, F_OK), 0);

    char *data;
    size_t len;
    TU_OK(slm_file_read_all(path, &data, &len, tu_err()));
    assert_int_equal(len, 5);
    assert_string_equal(data, "first");
    free(data);
}

static void test_read_missing_file_names_it(void **state) {
    (void)state;
    slm_err e;
    char *data;
    size_t len;
    assert_int_equal(slm_file_read_all("/nonexistent/slm.txt", &data, &len, &e), SLM_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/slm.txt"));
    slm_mmap m;
    assert_int_equal(slm_mmap_open("/nonexistent/slm.gguf", &m, &e), SLM_ERR_IO);
}

static void test_rng_reproducible_and_uniform(void **state) {
    (void)state;
    slm_rng a, b;
    slm_rng_seed(&a, 42, 7);
    slm_rng_seed(&b, 42, 7);
    for (int i = 0; i < 100; i++) assert_int_equal(slm_rng_u32(&a), slm_rng_u32(&b));
    slm_rng_seed(&b, 43, 7);
    int same = 0;
    for (int i = 0; i < 100; i++) same += slm_rng_u32(&a) == slm_rng_u32(&b);
    assert_true(same < 3);
    /* below(n) stays in range and hits every value; float in [0,1); normal has mean ~0, var ~1 */
    int hits[10] = {0};
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t x = slm_rng_below(&a, 10);
        assert_true(x < 10);
        hits[x]++;
        float f = slm_rng_float(&a);
        assert_true(f >= 0.0f && f < 1.0f);
        float z = slm_rng_normal(&a);
        sum += z;
        sq += (double)z * z;
    }
    for (int i = 0; i < 10; i++) assert_true(hits[i] > 1700 && hits[i] < 2300);
    assert_true(fabs(sum / 20000) < 0.05);
    assert_true(fabs(sq / 20000 - 1.0) < 0.05);
    assert_true(slm_rng_hash(1, 2, 3) != slm_rng_hash(1, 2, 4));
    assert_true(slm_rng_hash(1, 2, 3) == slm_rng_hash(1, 2, 3));
}

typedef struct {
    int *owner;
    size_t n;
} slice_job;

static void mark_slice(void *ctx, int ith, int nth) {
    slice_job *j = ctx;
    size_t b, e;
    slm_pool_slice(j->n, ith, nth, &b, &e);
    for (size_t i = b; i < e; i++) j->owner[i] += ith + 1;
}

/* slm_rng_permutation: every index exactly once, the same for the same stream, and each index
 * lands in each place about equally often (a biased shuffle would not). */
static void test_rng_permutation(void **state) {
    (void)state;
    enum { N = 7, REPS = 7000 };
    uint32_t p[N], q[N];
    int count[N][N] = {{0}};
    slm_rng r;
    slm_rng_seed(&r, 11, 2);
    for (int rep = 0; rep < REPS; rep++) {
        slm_rng_permutation(&r, p, N);
        int seen[N] = {0};
        for (int i = 0; i < N; i++) {
            assert_true(p[i] < N);
            seen[p[i]]++;
            count[i][p[i]]++;
        }
        for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    }
    for (int i = 0; i < N; i++)
        for (int v = 0; v < N; v++) assert_true(count[i][v] > REPS / N - 150 && count[i][v] < REPS / N + 150);
    slm_rng a, b;
    slm_rng_seed(&a, 5, 1);
    slm_rng_seed(&b, 5, 1);
    slm_rng_permutation(&a, p, N);
    slm_rng_permutation(&b, q, N);
    assert_memory_equal(p, q, sizeof p);
    slm_rng_permutation(&a, p, 0); /* nothing to do, nothing written */
}

static void test_pool_covers_every_item_once(void **state) {
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        slm_pool *p = slm_pool_new(threads, tu_err());
        assert_non_null(p);
        assert_int_equal(slm_pool_size(p), threads);
        for (size_t n = 0; n < 40; n += 7) {
            int owner[40] = {0};
            slice_job j = {owner, n};
            for (int rep = 0; rep < 3; rep++) slm_pool_run(p, mark_slice, &j);
            for (size_t i = 0; i < n; i++) {
                assert_true(owner[i] % 3 == 0);
                assert_true(owner[i] >= 3 && owner[i] <= 3 * threads);
            }
            /* slices are contiguous and in thread order */
            for (size_t i = 1; i < n; i++) assert_true(owner[i] >= owner[i - 1]);
        }
        slm_pool_free(p);
    }
    int owner[5] = {0};
    slice_job j = {owner, 5};
    slm_pool_run(NULL, mark_slice, &j);
    for (int i = 0; i < 5; i++) assert_int_equal(owner[i], 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_atomic_write_replaces_whole_file),
        cmocka_unit_test(test_read_missing_file_names_it),
        cmocka_unit_test(test_rng_reproducible_and_uniform),
        cmocka_unit_test(test_rng_permutation),
        cmocka_unit_test(test_pool_covers_every_item_once),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
