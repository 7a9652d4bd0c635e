// What Swift cannot import from OpenMPI's mpi.h: its handles are macros over addresses of
// global objects. Each is wrapped in a `static inline` function with the `aet_` prefix.
#ifndef AETRAIN_CMPI_SHIM_H
#define AETRAIN_CMPI_SHIM_H
#include <openmpi/mpi.h>

static inline MPI_Comm aet_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm aet_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype aet_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype aet_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype aet_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype aet_char(void) { return MPI_CHAR; }
static inline MPI_Datatype aet_int(void) { return MPI_INT; }
static inline MPI_Op aet_op_sum(void) { return MPI_SUM; }
static inline MPI_Op aet_op_min(void) { return MPI_MIN; }
static inline MPI_Op aet_op_max(void) { return MPI_MAX; }
static inline void *aet_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info aet_info_null(void) { return MPI_INFO_NULL; }
static inline int aet_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Errhandler aet_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int aet_success(void) { return MPI_SUCCESS; }
static inline int aet_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Status *aet_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *aet_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Request aet_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Win aet_win_null(void) { return MPI_WIN_NULL; }

#endif
