/* Machine context switch: the only architecture-specific code in crew.
 *
 * A context is a saved stack pointer. crew__ctx_switch() pushes the
 * callee-saved registers and the FP control words the ABI makes callee-saved
 * (x86_64: MXCSR control bits and the x87 control word; aarch64: d8-d15 and
 * FPCR) on the current stack, stores the stack pointer in *from, loads to's
 * stack pointer, pops the same set and returns into the resumed context.
 *
 * The value @p arg given to a switch is what crew__ctx_switch() returns on the
 * resumed side, or the argument of the entry function when the context starts.
 * The scheduler passes the task that just left, so that the resumed side can
 * finish that task's transition (requeue it, publish its park, recycle its
 * stack) once nothing runs on that task's stack any more. */
#ifndef CREW_RUNTIME_SWITCH_H
#define CREW_RUNTIME_SWITCH_H

typedef struct crew__ctx {
    void *sp; /* Saved stack pointer while the context is not running. */
} crew__ctx_t;

/* Save the running context into *from, resume *to, and return the arg of the
 * switch that later resumes *from. from and to must differ. Being assembly, it
 * is never inlined, but that alone does NOT stop a caller from reusing a
 * thread-local address computed before the call: code that may resume on
 * another thread must re-read per-thread state through crew__worker_self(). */
void *crew__ctx_switch(crew__ctx_t *from, crew__ctx_t *to, void *arg);

/* Prepare *ctx so that the first switch to it runs entry(arg) on the stack
 * whose highest address is stack_hi (exclusive). entry must never return: it
 * ends by switching away for good. The entry frame ends the frame-pointer
 * chain (frame pointer 0) and its CFI marks the return address undefined, so
 * perf and gdb stop unwinding there instead of walking into garbage. */
void crew__ctx_make(crew__ctx_t *ctx, void *stack_hi, void (*entry)(void *arg));

#endif
