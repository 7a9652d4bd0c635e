// OpenBLAS's CBLAS interface (Debian: libopenblas-dev puts cblas.h on the include path
// through update-alternatives) plus the OpenBLAS thread control, declared here so that
// the build does not depend on which cblas.h alternative is selected.
#ifndef AETRAIN_COPENBLAS_SHIM_H
#define AETRAIN_COPENBLAS_SHIM_H
#include <cblas.h>

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

// LAPACK, which OpenBLAS ships (Fortran calling convention: every argument by pointer,
// column-major matrices).
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
            const int *ldb, int *info);

#endif
