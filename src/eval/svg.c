/* svg.c: the SVG writer behind evaluation plots (see svg.h): a plot frame with nice ticks, then
 * the marks of each kind of chart. */
#include "eval/svg.h"

#include <math.h>
#include <string.h>

enum { W = 640, H = 400, ML = 72, MR = 24, MT = 44, MB = 56 };

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
#define N_PALETTE ((int)(sizeof palette / sizeof palette[0]))

void slm_svg_escape(FILE *f, const char *text) {
    if (!text) return;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (*c >= 0x20 || *c == '\t' || *c == '\n') fputc(*c, f);
        }
    }
}

/* An axis: data range [lo, hi] mapped to pixels [p0, p1]; optionally log10. */
typedef struct {
    double lo, hi;
    double p0, p1;
    int log;
} axis;

static double ax_map(const axis *a, double v) {
    double t;
    if (a->log) t = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    else t = (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static double nice_step(double range, int target) {
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    double step = r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
    return step * mag;
}

/* Widens [lo, hi] to tick multiples (or powers of ten for a log axis); handles lo == hi. */
static void ax_fit(axis *a, double lo, double hi) {
    if (a->log) {
        if (!(lo > 0)) lo = hi > 0 ? hi / 10 : 1;
        if (!(hi > 0)) hi = lo * 10;
        a->lo = pow(10, floor(log10(lo)));
        a->hi = pow(10, ceil(log10(hi)));
        if (a->hi <= a->lo) a->hi = a->lo * 10;
        return;
    }
    if (hi <= lo) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    double step = nice_step(hi - lo, 5);
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
}

static void fmt_tick(char *buf, size_t n, double v, double step) {
    if (v == 0) snprintf(buf, n, "0");
    else if (fabs(v) >= 1e5 || fabs(v) < 1e-3) snprintf(buf, n, "%.0e", v);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, n, "%.*f", dec, v);
    }
}

static void head(FILE *f, const char *title) {
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    slm_svg_escape(f, title);
    fputs("</text>\n", f);
}

static slm_status tail(FILE *f, slm_err *err) {
    fputs("</svg>\n", f);
    if (ferror(f)) return slm_err_set(err, SLM_ERR_IO, "writing SVG failed");
    return SLM_OK;
}

/* Frame, grid, ticks and axis labels. */
static void frame(FILE *f, const axis *x, const axis *y, const char *xlabel, const char *ylabel) {
    fputs("<g stroke=\"#dddddd\" stroke-width=\"1\">\n", f);
    char buf[32];
    /* y ticks */
    double ystep = nice_step(y->hi - y->lo, 5);
    for (double v = y->lo; v <= y->hi + ystep * 1e-6; v += ystep) {
        double py = ax_map(y, v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", ML, py, W - MR, py);
    }
    fputs("</g>\n<g fill=\"#333333\">\n", f);
    for (double v = y->lo; v <= y->hi + ystep * 1e-6; v += ystep) {
        fmt_tick(buf, sizeof buf, fabs(v) < ystep * 1e-9 ? 0 : v, ystep);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ML - 6,
                ax_map(y, v) + 4, buf);
    }
    if (x->log) {
        for (double v = x->lo; v <= x->hi * 1.000001; v *= 10) {
            fmt_tick(buf, sizeof buf, v, v);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", ax_map(x, v),
                    H - MB + 18, buf);
        }
    } else {
        double xstep = nice_step(x->hi - x->lo, 6);
        for (double v = x->lo; v <= x->hi + xstep * 1e-6; v += xstep) {
            fmt_tick(buf, sizeof buf, fabs(v) < xstep * 1e-9 ? 0 : v, xstep);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", ax_map(x, v),
                    H - MB + 18, buf);
        }
    }
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333333\"/>\n",
            ML, MT, W - ML - MR, H - MT - MB);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 14);
    slm_svg_escape(f, xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">",
            (MT + H - MB) / 2, (MT + H - MB) / 2);
    slm_svg_escape(f, ylabel);
    fputs("</text>\n", f);
}

static void legend_entry(FILE *f, int i, const char *name) {
    int y = MT + 14 + 16 * i;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" fill=\"%s\"/>\n", W - MR - 170,
            y - 6, palette[i % N_PALETTE]);
    fprintf(f, "<text x=\"%d\" y=\"%d\">", W - MR - 152, y);
    slm_svg_escape(f, name);
    fputs("</text>\n", f);
}

slm_status slm_svg_line_chart(FILE *f, const char *title, const char *xlabel, const char *ylabel,
                              const slm_svg_series *series, int n_series, slm_err *err) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!(xlo <= xhi)) return slm_err_set(err, SLM_ERR_ARG, "line chart '%s': no finite point", title);
    axis ax = {0, 0, ML, W - MR, 0}, ay = {0, 0, H - MB, MT, 0};
    ax_fit(&ax, xlo, xhi);
    ax_fit(&ay, ylo, yhi);
    head(f, title);
    frame(f, &ax, &ay, xlabel, ylabel);
    for (int s = 0; s < n_series; s++) {
        fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"", palette[s % N_PALETTE]);
        int pen_up = 1, drawn = 0;
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) {
                pen_up = 1;
                continue;
            }
            fprintf(f, "%s%.1f %.1f", pen_up ? (drawn ? " M" : "M") : " L", ax_map(&ax, x), ax_map(&ay, y));
            pen_up = 0;
            drawn = 1;
        }
        if (!drawn) fputs("M0 0", f);
        fputs("\"/>\n", f);
        legend_entry(f, s, series[s].name);
    }
    return tail(f, err);
}

slm_status slm_svg_reliability(FILE *f, const char *title, const slm_svg_reliability_model *models,
                               int n_models, slm_err *err) {
    if (n_models < 1) return slm_err_set(err, SLM_ERR_ARG, "reliability diagram '%s': no model", title);
    axis ax = {0, 1, ML, W - MR, 0}, ay = {0, 1, H - MB, MT, 0};
    head(f, title);
    frame(f, &ax, &ay, "confidence (max probability)", "accuracy");
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\" "
               "stroke-dasharray=\"4 3\"/>\n",
            ax_map(&ax, 0), ax_map(&ay, 0), ax_map(&ax, 1), ax_map(&ay, 1));
    for (int m = 0; m < n_models; m++) {
        const char *color = palette[m % N_PALETTE];
        for (int b = 0; b < models[m].n_bins; b++) {
            const slm_calib_bin *bin = &models[m].bins[b];
            if (!bin->count) continue;
            double w = (bin->hi - bin->lo) / n_models;
            double x0 = bin->lo + w * m;
            double px0 = ax_map(&ax, x0), px1 = ax_map(&ax, x0 + w);
            double py = ax_map(&ay, bin->accuracy), pb = ax_map(&ay, 0);
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                       "fill-opacity=\"0.6\" stroke=\"%s\"><title>",
                    px0, py, px1 - px0 - 0.5 > 0 ? px1 - px0 - 0.5 : 0.5, pb - py, color, color);
            fprintf(f, "%.2f-%.2f: n=%ld, confidence %.3f, accuracy %.3f", bin->lo, bin->hi,
                    bin->count, bin->confidence, bin->accuracy);
            fputs("</title></rect>\n", f);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"black\"/>\n",
                    (px0 + px1) / 2, ax_map(&ay, bin->confidence));
        }
        legend_entry(f, m, models[m].name);
    }
    return tail(f, err);
}

slm_status slm_svg_scatter(FILE *f, const char *title, const char *xlabel, const char *ylabel,
                           const slm_svg_point *points, int n_points, int log_x, slm_err *err) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n_points; i++) {
        double x = points[i].x, y = points[i].y;
        if (!isfinite(x) || !isfinite(y) || (log_x && x <= 0)) continue;
        xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
    }
    if (!(xlo <= xhi)) return slm_err_set(err, SLM_ERR_ARG, "scatter '%s': no plottable point", title);
    axis ax = {0, 0, ML, W - MR, log_x}, ay = {0, 0, H - MB, MT, 0};
    ax_fit(&ax, xlo, xhi);
    ax_fit(&ay, ylo, yhi);
    head(f, title);
    frame(f, &ax, &ay, xlabel, ylabel);
    for (int i = 0; i < n_points; i++) {
        double x = points[i].x, y = points[i].y;
        if (!isfinite(x) || !isfinite(y) || (log_x && x <= 0)) continue;
        double px = ax_map(&ax, x), py = ax_map(&ay, y);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n", px, py,
                palette[i % N_PALETTE]);
        int right = px > W - MR - 140;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", right ? px - 8 : px + 8, py - 6,
                right ? "end" : "start");
        slm_svg_escape(f, points[i].label);
        fputs("</text>\n", f);
    }
    return tail(f, err);
}
