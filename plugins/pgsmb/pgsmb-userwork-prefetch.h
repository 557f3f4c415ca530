/* Read-ahead of a home's metadata, and of what changed since a record, ahead of a delta's walk
 * (pgsmb-userwork-prefetch.c; runs as the user). */
#pragma once

#include "pgsmb-scan.h"

struct prefetch;

/* Threads that look ahead below home (ex: the normalized exclusions; record: may be NULL; both
 * must outlive the prefetch). NULL when it cannot start: the walk does without. */
struct prefetch *pgsmb_prefetch_start(const char *home, char *const *ex, const struct scan *record);
/* Stops the threads and frees p (NULL: nothing). */
void pgsmb_prefetch_stop(struct prefetch *p);
static inline void prefetch_stopp(struct prefetch **p) { pgsmb_prefetch_stop(*p); }
