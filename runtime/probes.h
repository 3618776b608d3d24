/* USDT probes (perf, bpftrace, SystemTap): static tracepoints at the
 * scheduler's decisions. With nothing attached each costs one nop; the
 * arguments are values already in registers. Provider "crew":
 *   crew:task_spawn(task id, worker index)
 *   crew:task_steal(thief index, victim index, tasks taken)
 *   crew:worker_park(worker index)   crew:worker_unpark(worker index)
 *   crew:task_wake(task id, cause)
 * List them with `perf list 'sdt_crew:*'` after `perf buildid-cache --add
 * libcrew.so`. Built only when <sys/sdt.h> is found (CREW_WITH_USDT). */
#ifndef CREW_RUNTIME_PROBES_H
#define CREW_RUNTIME_PROBES_H

#if defined(CREW_WITH_USDT)
#include <sys/sdt.h>
#define CREW_PROBE1(name, a) DTRACE_PROBE1(crew, name, a)
#define CREW_PROBE2(name, a, b) DTRACE_PROBE2(crew, name, a, b)
#define CREW_PROBE3(name, a, b, c) DTRACE_PROBE3(crew, name, a, b, c)
#else
#define CREW_PROBE1(name, a) ((void)(a))
#define CREW_PROBE2(name, a, b) ((void)(a), (void)(b))
#define CREW_PROBE3(name, a, b, c) ((void)(a), (void)(b), (void)(c))
#endif

#endif
