/* crew: library version. */
#ifndef CREW_VERSION_H
#define CREW_VERSION_H

#include <crew/export.h>

#define CREW_VERSION_MAJOR 0
#define CREW_VERSION_MINOR 1
#define CREW_VERSION_PATCH 0
/* 0xMMmmpp: compare with crew_version_hex() to detect a header/library mismatch. */
#define CREW_VERSION_HEX ((CREW_VERSION_MAJOR << 16) | (CREW_VERSION_MINOR << 8) | CREW_VERSION_PATCH)

CREW_BEGIN_DECLS

/** The version of the linked library as "MAJOR.MINOR.PATCH". Static storage; never freed. */
CREW_EXPORT const char *crew_version_string(void);

/** The version of the linked library as CREW_VERSION_HEX would spell it. */
CREW_EXPORT unsigned crew_version_hex(void);

CREW_END_DECLS

#endif
