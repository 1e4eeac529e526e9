/* blas_threads.h: how many threads OpenBLAS's own pool uses for matrix products. */
#ifndef SLM_KERNELS_BLAS_THREADS_H
#define SLM_KERNELS_BLAS_THREADS_H

/* n <= 0: one per online CPU. Applies process-wide (OpenBLAS has one pool per process). */
void slm_blas_set_threads(int n);
int slm_blas_threads(void);

#endif
