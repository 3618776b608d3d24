/* The linked library's version. */
#include <crew/version.h>

const char *crew_version_string(void)
{
#define CREW_STR2(x) #x
#define CREW_STR(x) CREW_STR2(x)
    return CREW_STR(CREW_VERSION_MAJOR) "." CREW_STR(CREW_VERSION_MINOR) "." CREW_STR(CREW_VERSION_PATCH);
}

unsigned crew_version_hex(void)
{
    return CREW_VERSION_HEX;
}
