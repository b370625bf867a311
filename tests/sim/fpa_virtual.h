/*
 * fpa_virtual.h -- the "virtual" FPA backend: the software eUICC behind fpa.h, for tests, the
 * demo and line rehearsal. No product binary links it (issue 8, item 2).
 */
#ifndef IFPP_FPA_VIRTUAL_H
#define IFPP_FPA_VIRTUAL_H

#include "fpa.h"

extern const fpa_ops fpa_virtual_ops;

/* Registers the backend as "virtual" (also done at start-up by any binary that links this file). */
ifpp_err fpa_virtual_register(void);

#endif
