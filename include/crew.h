/* crew: a multi-threaded, work-stealing async runtime for C.
 * Including this header gives the whole public API. */
#ifndef CREW_H
#define CREW_H

#include <crew/export.h>
#include <crew/version.h>
#include <crew/error.h>
#include <crew/runtime.h>
#include <crew/task.h>
#include <crew/time.h>
#include <crew/io.h>
#include <crew/signal.h>
#include <crew/executor.h>
#include <crew/file.h>
#include <crew/chan.h>
#include <crew/sync.h>
#include <crew/queue.h>

#endif
