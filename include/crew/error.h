/* crew: error codes.
 *
 * Every crew function that can fail returns 0 on success or a negative errno
 * value (-EINVAL, -ENOMEM, ...). crew never reports errors through errno:
 * tasks migrate between threads, and errno is per thread. errno's value after
 * any crew call that suspends is unspecified.
 *
 * Conditions that have no errno of their own get crew-specific codes below
 * -4000, far from every errno value Linux defines. */
#ifndef CREW_ERROR_H
#define CREW_ERROR_H

#include <crew/export.h>

/* Reserved range for crew-specific codes (all negative, below any -errno). */
#define CREW_ERRNO_BASE 4000

CREW_BEGIN_DECLS

/**
 * A short English description of @p err, which is 0, a negative errno or a
 * crew-specific code. Unknown codes give "unknown error". The string has static
 * storage; never free it. Thread-safe; never suspends.
 */
CREW_EXPORT const char *crew_strerror(int err);

CREW_END_DECLS

#endif
