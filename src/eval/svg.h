/* svg.h: three small hand-written SVG plots for evaluation reports — a line chart (loss curves),
 * a reliability diagram (accuracy per confidence bin against the diagonal) and a labelled scatter
 * (accuracy versus cost of every model evaluated).
 *
 * Output is a standalone SVG 1.1 document (XML declaration, one <svg> root, every element closed,
 * all text escaped), 640 x 400 user units, readable in a browser or embedded in Markdown. Axes get
 * "nice" ticks (1, 2, 5 x 10^k); a log x axis gets ticks at powers of ten. Non-finite points are
 * skipped (a line is broken there). Nothing here allocates.
 */
#ifndef SLM_EVAL_SVG_H
#define SLM_EVAL_SVG_H

#include <stdio.h>

#include "core/error.h"
#include "eval/classify_metrics.h"

typedef struct {
    const char *name;   /* legend text */
    const double *x, *y;
    int n;
} slm_svg_series;

typedef struct {
    const char *name;
    const slm_calib_bin *bins;
    int n_bins;
} slm_svg_reliability_model;

typedef struct {
    const char *label;
    double x, y;
} slm_svg_point;

/* Writes text with &, <, >, " and ' escaped as XML entities (control bytes other than tab/newline
 * are dropped: XML 1.0 cannot carry them). */
void slm_svg_escape(FILE *f, const char *text);

/* Lines through each series' points, with axes, ticks, axis labels, a title and a legend.
 * Errors: no finite point at all (SLM_ERR_ARG), a write error (SLM_ERR_IO). */
slm_status slm_svg_line_chart(FILE *f, const char *title, const char *xlabel, const char *ylabel,
                              const slm_svg_series *series, int n_series, slm_err *err);

/* Per model, one bar per non-empty bin at the bin's accuracy (bars of several models side by
 * side), the diagonal of perfect calibration, and the mean confidence of each bin as a dot. Axes
 * are [0, 1] x [0, 1]. Errors: no model (SLM_ERR_ARG), a write error (SLM_ERR_IO). */
slm_status slm_svg_reliability(FILE *f, const char *title, const slm_svg_reliability_model *models,
                               int n_models, slm_err *err);

/* One labelled dot per point; log_x puts x on a log10 axis (points with x <= 0 are skipped then).
 * Errors: no plottable point (SLM_ERR_ARG), a write error (SLM_ERR_IO). */
slm_status slm_svg_scatter(FILE *f, const char *title, const char *xlabel, const char *ylabel,
                           const slm_svg_point *points, int n_points, int log_x, slm_err *err);

#endif
