/* Portable half of the context switch: building a fresh context's first frame. */
#include "switch.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)

void crew__ctx_trampoline(void);

void crew__ctx_make(crew__ctx_t *ctx, void *stack_hi, void (*entry)(void *arg))
{
    /* The trampoline is reached by `ret`; after it rsp must be 16-byte aligned
     * so that its `call` gives the entry function the ABI's entry alignment
     * (rsp + 8 a multiple of 16). Hence the return-address slot sits 24 bytes
     * below the aligned top. */
    uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
    uint64_t *ret_slot = (uint64_t *)(top - 24);
    uint64_t *frame = ret_slot - 7;
    uint32_t mxcsr = 0x1F80; /* All exceptions masked, round to nearest: the ABI's initial state. */
    uint16_t fpucw = 0x037F; /* x87: all exceptions masked, 64-bit precision, round to nearest. */

    memcpy(&frame[0], &mxcsr, sizeof mxcsr);
    memcpy((char *)&frame[0] + 4, &fpucw, sizeof fpucw);
    frame[1] = 0;                     /* r15 */
    frame[2] = 0;                     /* r14 */
    frame[3] = 0;                     /* r13 */
    frame[4] = (uint64_t)(uintptr_t)entry; /* r12: called by the trampoline */
    frame[5] = 0;                     /* rbx */
    frame[6] = 0;                     /* rbp: ends the frame chain */
    ret_slot[0] = (uint64_t)(uintptr_t)crew__ctx_trampoline + 1; /* Past its nop: see the .S. */
    ctx->sp = frame;
}

#elif defined(__aarch64__)

void crew__ctx_trampoline(void);

void crew__ctx_make(crew__ctx_t *ctx, void *stack_hi, void (*entry)(void *arg))
{
    /* The saved frame is a multiple of 16 bytes, so popping it leaves sp at
     * the aligned top, which is where the trampoline calls the entry from:
     * AAPCS64 wants sp 16-byte aligned at every instruction. The frame is
     * laid out as in switch_aarch64.S. */
    uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 176);

    /* x29 0 ends the frame chain; x20-x28 and d8-d15 start at 0; FPCR 0 is
     * the state Linux starts a process in: round to nearest, no traps, no
     * flush-to-zero. */
    memset(frame, 0, 176);
    frame[1] = (uint64_t)(uintptr_t)crew__ctx_trampoline + 4; /* x30: past the trampoline's nop */
    frame[2] = (uint64_t)(uintptr_t)entry;                    /* x19: called by the trampoline */
    ctx->sp = frame;
}

#else
#error "crew supports x86_64 and aarch64"
#endif
