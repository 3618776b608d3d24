/* Executors, the runtime's side: the default executor's lifetime and the
 * submit call that the file helpers (file.c) share with crew_run_in_executor. */
#ifndef CREW_RUNTIME_EXECUTOR_H
#define CREW_RUNTIME_EXECUTOR_H

#include "internal.h"

/* Flags of crew__executor_call. */
enum {
    /* If the caller is cancelled or times out while fn runs, keep waiting
     * (shielded) and return fn's result: fn uses memory of the caller (a
     * buffer) that must stay valid until it returns. A queued call is still
     * removed at once. */
    CREW_EXEC_FINISH = 1u << 0,
};

/* Run fn(arg) on ex (NULL: the default executor of the calling task's
 * runtime) and wait; see crew_run_in_executor_ex for the contract. */
int crew__executor_call(crew_executor_t *ex, crew_fn_t fn, void *arg, crew_discard_fn_t discard,
                        unsigned flags, void **result);

/* crew_rt_destroy, once no task is live: stop and free rt's default
 * executor, if one was created (waits for calls still running). */
void crew__executor_rt_fini(crew_rt_t *rt);

#endif
