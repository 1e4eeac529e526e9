/* blas_threads.c: OpenBLAS thread count (see blas_threads.h). */
#include "kernels/blas_threads.h"

#include <cblas.h>

#include "core/threads.h"

void slm_blas_set_threads(int n) { openblas_set_num_threads(n > 0 ? n : slm_cpu_count()); }

int slm_blas_threads(void) { return openblas_get_num_threads(); }
