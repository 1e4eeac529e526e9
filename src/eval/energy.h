/* energy.h: energy, carbon and cost of a measured run of queries, and the process's peak memory.
 *
 * Energy is measured with RAPL where the machine exposes it and the process may read it:
 * <root>/intel-rapl:N/energy_uj (root is normally /sys/class/powercap; a parameter so tests can
 * use a fake tree), summed over the top-level package zones intel-rapl:N only (sub-zones such as
 * intel-rapl:N:M — core, uncore, dram — are parts of their package and would count twice). The
 * counter wraps at max_energy_range_uj; a reading lower than the start adds that range once.
 * RAPL counts the whole package, other processes included: the label says "measured (RAPL)".
 * Otherwise (no powercap tree, not readable — Linux makes energy_uj root-only since 2020 — or
 * not an x86 machine) energy is estimated as the run's CPU seconds x watts_per_core, labelled
 * "estimated".
 *
 * Defaults, stated so a reader can redo the arithmetic with their own figures:
 * - watts_per_core 10 W: one busy x86 core of a desktop or laptop with its share of the package
 *   (a 65-125 W 6-12 core part); server parts run 3-6 W per core, so this errs high.
 * - grid_g_per_kwh 400 gCO2e/kWh: about the world's average electricity in 2023 (Ember puts it
 *   near 480, the EU near 250, the US near 370); set your own grid's figure.
 * - price_per_cpu_hour 0.05 USD: about an on-demand x86 cloud vCPU-hour (e.g. AWS c7i: 0.0893 USD
 *   per hour for 2 vCPUs, 2024). Cost counts CPU time, not wall time x threads: idle threads cost
 *   nothing here, which is right for a shared server and optimistic for a dedicated one.
 */
#ifndef SLM_EVAL_ENERGY_H
#define SLM_EVAL_ENERGY_H

#include <stdint.h>

#include "core/error.h"

#define SLM_POWERCAP_ROOT "/sys/class/powercap"
#define SLM_RAPL_MAX_ZONES 16

typedef struct {
    double watts_per_core;      /* W per busy core for the estimate                 [10]  */
    double grid_g_per_kwh;      /* grid carbon intensity, gCO2e per kWh             [400] */
    double price_per_cpu_hour;  /* USD per CPU-hour                                 [0.05] */
    const char *powercap_root;  /* NULL = SLM_POWERCAP_ROOT; "" = never read RAPL          */
} slm_energy_opts;

void slm_energy_opts_default(slm_energy_opts *o);

typedef struct {
    int n;                                    /* zones read */
    char name[SLM_RAPL_MAX_ZONES][32];        /* "intel-rapl:0", ... */
    uint64_t energy_uj[SLM_RAPL_MAX_ZONES];
    uint64_t max_range_uj[SLM_RAPL_MAX_ZONES]; /* 0 when the file is missing */
} slm_rapl_snapshot;

/* Reads every package zone under root. Errors: no zone (SLM_ERR_UNSUPPORTED), a zone present but
 * unreadable or malformed (SLM_ERR_IO / SLM_ERR_FORMAT naming the file). */
slm_status slm_rapl_read(const char *root, slm_rapl_snapshot *s, slm_err *err);

/* Joules between two snapshots of the same zones, each zone's wrap-around undone once.
 * Errors: the zone sets differ (SLM_ERR_FORMAT). */
slm_status slm_rapl_joules(const slm_rapl_snapshot *before, const slm_rapl_snapshot *after,
                           double *joules, slm_err *err);

typedef struct {
    int measured;             /* 1: RAPL, 0: estimated from CPU time */
    const char *method;       /* "measured (RAPL)" or "estimated" (static strings) */
    long queries;
    double wall_s, cpu_s;     /* of the run */
    double joules;            /* of the run */
    double j_per_query;
    double queries_per_kwh;
    double g_co2e_per_1k;     /* grams CO2e per 1,000 queries */
    double cpu_s_per_query;
    double usd_per_1k;        /* cost of 1,000 queries at price_per_cpu_hour */
} slm_energy_result;

/* The derived figures of a run of queries that used joules (measured = 1) or, when joules < 0,
 * cpu_s x watts_per_core (measured = 0). Errors: queries < 1 or cpu_s < 0 (SLM_ERR_ARG). */
slm_status slm_energy_derive(double joules, double cpu_s, double wall_s, long queries,
                             const slm_energy_opts *o, slm_energy_result *out, slm_err *err);

/* Brackets a run: start takes the RAPL snapshot (if any), CPU and wall clocks; stop derives. */
typedef struct {
    slm_energy_opts opts;
    int have_rapl;
    slm_rapl_snapshot rapl;
    double cpu0, wall0;
    char why_estimated[1024]; /* why RAPL was not used, for the report ("" when it was) */
} slm_energy_meter;

void slm_energy_meter_start(slm_energy_meter *m, const slm_energy_opts *o);
slm_status slm_energy_meter_stop(slm_energy_meter *m, long queries, slm_energy_result *out,
                                 slm_err *err);

/* Peak resident memory of this process in KiB, from VmHWM in /proc/self/status (getrusage's
 * figure where /proc is missing); -1 when unknown. */
long slm_eval_peak_rss_kib(void);
/* Resets the peak to the current resident size (Linux: writes 5 to /proc/self/clear_refs), so the
 * second model of a run gets its own peak. Returns 1 when reset, 0 when not possible. */
int slm_eval_peak_rss_reset(void);

#endif
