/* crew: symbol visibility and attribute macros shared by every public header. */
#ifndef CREW_EXPORT_H
#define CREW_EXPORT_H

/* The library is built with -fvisibility=hidden; only declarations marked
 * CREW_EXPORT appear in libcrew.so's dynamic symbol table. */
#if defined(__GNUC__) || defined(__clang__)
#define CREW_EXPORT __attribute__((visibility("default")))
#define CREW_NODISCARD __attribute__((warn_unused_result))
#else
#define CREW_EXPORT
#define CREW_NODISCARD
#endif

#ifdef __cplusplus
#define CREW_BEGIN_DECLS extern "C" {
#define CREW_END_DECLS }
#else
#define CREW_BEGIN_DECLS
#define CREW_END_DECLS
#endif

#endif
