// Counts heap allocations in this process while switched on, by interposing the C
// allocator (the test executable's malloc & co. take precedence over glibc's for every
// library, Swift's runtime and OpenBLAS included). Test-only.
#ifndef AETRAIN_ALLOCATION_COUNTER_H
#define AETRAIN_ALLOCATION_COUNTER_H
#include <stddef.h>

void aet_count_allocations(int on);
long aet_allocations(void);

#endif
