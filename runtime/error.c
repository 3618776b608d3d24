/* Error reporting: crew_strerror and crew__panic. */
#include "internal.h"

#include <string.h>
#include <unistd.h>

const char *crew_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -ESHUTDOWN:
        return "runtime is shutting down";
    case -EDEADLK:
        return "operation would wait for itself";
    case -EPERM:
        return "not called from a crew task";
    default:
        break;
    }
    /* strerrordesc_np returns a static string (unlike strerror, no buffer shared
     * between threads), or NULL for unknown codes. */
    if (err < 0 && err > -CREW_ERRNO_BASE) {
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

void crew__panic(const char *file, int line, const char *what)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "crew: internal error at %s:%d: %s\n", file, line, what);
    if (n > 0)
        (void)!write(STDERR_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    abort();
}
