/* energy.c: RAPL counters from the powercap sysfs tree, the CPU-time estimate, the derived
 * energy/carbon/cost figures and the peak-RSS probes (see energy.h). */
#include "eval/energy.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

void slm_energy_opts_default(slm_energy_opts *o) {
    o->watts_per_core = 10.0;
    o->grid_g_per_kwh = 400.0;
    o->price_per_cpu_hour = 0.05;
    o->powercap_root = NULL;
}

/* "intel-rapl:<digits>" exactly: a package zone, not a sub-zone. */
static int is_package_zone(const char *name) {
    const char *p = "intel-rapl:";
    size_t k = strlen(p);
    if (strncmp(name, p, k) != 0 || !name[k]) return 0;
    for (const char *c = name + k; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    return 1;
}

/* Reads one unsigned decimal from a sysfs file. 1 = ok, 0 = missing, -1 = unreadable/bad. */
static int read_u64(const char *path, uint64_t *v, slm_err *err, slm_status *st) {
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        *st = slm_err_set(err, SLM_ERR_IO, "%s: %s", path, strerror(errno));
        return -1;
    }
    char buf[64] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        *st = slm_err_set(err, SLM_ERR_IO, "%s: read error", path);
        return -1;
    }
    buf[got] = '\0';
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    while (*end == '\n' || *end == ' ') end++;
    if (end == buf || *end || errno || buf[0] == '-') {
        *st = slm_err_set(err, SLM_ERR_FORMAT, "%s: not a counter: '%.20s'", path, buf);
        return -1;
    }
    *v = (uint64_t)x;
    return 1;
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

slm_status slm_rapl_read(const char *root, slm_rapl_snapshot *s, slm_err *err) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir(root);
    if (!d) return slm_err_set(err, SLM_ERR_UNSUPPORTED, "no RAPL: %s: %s", root, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) && s->n < SLM_RAPL_MAX_ZONES) {
        size_t len = strlen(e->d_name);
        if (is_package_zone(e->d_name) && len < sizeof s->name[0]) memcpy(s->name[s->n++], e->d_name, len + 1);
    }
    closedir(d);
    if (s->n == 0)
        return slm_err_set(err, SLM_ERR_UNSUPPORTED, "no RAPL: no intel-rapl:N zone under %s", root);
    qsort(s->name, (size_t)s->n, sizeof s->name[0], cmp_name);
    for (int i = 0; i < s->n; i++) {
        char path[4096];
        slm_status st = SLM_OK;
        snprintf(path, sizeof path, "%s/%s/energy_uj", root, s->name[i]);
        int r = read_u64(path, &s->energy_uj[i], err, &st);
        if (r == 0) return slm_err_set(err, SLM_ERR_IO, "%s: missing", path);
        if (r < 0) return st;
        snprintf(path, sizeof path, "%s/%s/max_energy_range_uj", root, s->name[i]);
        r = read_u64(path, &s->max_range_uj[i], err, &st);
        if (r < 0) return st;
        if (r == 0) s->max_range_uj[i] = 0;
    }
    return SLM_OK;
}

slm_status slm_rapl_joules(const slm_rapl_snapshot *before, const slm_rapl_snapshot *after,
                           double *joules, slm_err *err) {
    if (before->n != after->n)
        return slm_err_set(err, SLM_ERR_FORMAT, "RAPL zones changed during the run (%d -> %d)",
                           before->n, after->n);
    double uj = 0;
    for (int i = 0; i < before->n; i++) {
        if (strcmp(before->name[i], after->name[i]) != 0)
            return slm_err_set(err, SLM_ERR_FORMAT, "RAPL zones changed during the run (%s -> %s)",
                               before->name[i], after->name[i]);
        uint64_t a = before->energy_uj[i], b = after->energy_uj[i];
        if (b >= a) uj += (double)(b - a);
        else if (before->max_range_uj[i] > a)
            uj += (double)(before->max_range_uj[i] - a) + (double)b;
        else
            return slm_err_set(err, SLM_ERR_FORMAT,
                               "RAPL zone %s went backwards (%" PRIu64 " -> %" PRIu64
                               ") without a max_energy_range_uj to undo the wrap",
                               before->name[i], a, b);
    }
    *joules = uj * 1e-6;
    return SLM_OK;
}

slm_status slm_energy_derive(double joules, double cpu_s, double wall_s, long queries,
                             const slm_energy_opts *o, slm_energy_result *out, slm_err *err) {
    memset(out, 0, sizeof *out);
    if (queries < 1 || !(cpu_s >= 0))
        return slm_err_set(err, SLM_ERR_ARG, "energy of %ld queries over %g CPU seconds", queries,
                           cpu_s);
    out->measured = joules >= 0;
    out->method = out->measured ? "measured (RAPL)" : "estimated";
    out->queries = queries;
    out->wall_s = wall_s;
    out->cpu_s = cpu_s;
    out->joules = out->measured ? joules : cpu_s * o->watts_per_core;
    out->j_per_query = out->joules / (double)queries;
    out->queries_per_kwh = out->j_per_query > 0 ? 3.6e6 / out->j_per_query : 0;
    /* J/query x 1000 queries / 3.6e6 J per kWh x g per kWh */
    out->g_co2e_per_1k = out->j_per_query * 1000.0 / 3.6e6 * o->grid_g_per_kwh;
    out->cpu_s_per_query = cpu_s / (double)queries;
    out->usd_per_1k = out->cpu_s_per_query * 1000.0 / 3600.0 * o->price_per_cpu_hour;
    return SLM_OK;
}

void slm_energy_meter_start(slm_energy_meter *m, const slm_energy_opts *o) {
    memset(m, 0, sizeof *m);
    m->opts = *o;
    const char *root = o->powercap_root ? o->powercap_root : SLM_POWERCAP_ROOT;
    if (!root[0]) {
        snprintf(m->why_estimated, sizeof m->why_estimated, "RAPL not asked for");
    } else {
        slm_err e;
        if (slm_rapl_read(root, &m->rapl, &e) == SLM_OK) m->have_rapl = 1;
        else snprintf(m->why_estimated, sizeof m->why_estimated, "%s", e.msg);
    }
    m->wall0 = slm_time_now();
    m->cpu0 = slm_time_cpu();
}

slm_status slm_energy_meter_stop(slm_energy_meter *m, long queries, slm_energy_result *out,
                                 slm_err *err) {
    double cpu = slm_time_cpu() - m->cpu0, wall = slm_time_now() - m->wall0;
    double joules = -1;
    if (m->have_rapl) {
        slm_rapl_snapshot after;
        slm_err e;
        const char *root = m->opts.powercap_root ? m->opts.powercap_root : SLM_POWERCAP_ROOT;
        if (slm_rapl_read(root, &after, &e) != SLM_OK || slm_rapl_joules(&m->rapl, &after, &joules, &e) != SLM_OK) {
            joules = -1;
            snprintf(m->why_estimated, sizeof m->why_estimated, "%s", e.msg);
        }
    }
    return slm_energy_derive(joules, cpu, wall, queries, &m->opts, out, err);
}

long slm_eval_peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kib = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) {
                kib = strtol(line + 6, NULL, 10);
                break;
            }
        fclose(f);
        if (kib > 0) return kib;
    }
    return slm_peak_rss_kb();
}

int slm_eval_peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}
