/* Checks of the context switch (runtime/switch.h) on its own, without the
 * scheduler. Shared by the cmocka suite (tests/test_switch.c) and the plain-C
 * self-test (tests/cross/switch_selftest.c) that also runs on aarch64 under
 * qemu, so that both run the very same checks.
 *
 * Each sc_check_*() returns NULL on success or a message saying what failed.
 * Code on a fiber stack only records what it saw; the checks compare after
 * switching back to the caller's stack, so cmocka's failure longjmp never
 * starts on a fiber stack. Fiber stacks are mmap'd with a guard page and
 * filled with garbage, so a context that only works on zeroed memory (a frame
 * pointer that happens to be 0) fails.
 *
 * Include this header in one translation unit per program: it defines
 * assembly probes at file scope. */
#ifndef CREW_TESTS_SWITCH_CHECKS_H
#define CREW_TESTS_SWITCH_CHECKS_H

#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unwind.h>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#if !defined(ASAN_UNPOISON_MEMORY_REGION)
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#if !defined(VALGRIND_STACK_REGISTER)
#define VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define RUNNING_ON_VALGRIND 0
#endif

#include "switch.h"

/* Defined in switch_<arch>.S; the entry function's return address points
 * into it. */
void crew__ctx_trampoline(void);

#define SC_STACK_SIZE (64 * 1024)
#define SC_GARBAGE 0xA5
/* The trampoline is a handful of instructions; a return address past this
 * is not inside it. */
#define SC_TRAMPOLINE_SIZE 32

/* Records the first failure of a check in the local `err`. */
#define SC_EXPECT(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond) && !err)                                                                   \
            err = sc_fail(__VA_ARGS__);                                                        \
    } while (0)

static char sc_msg[512];

static const char *sc_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc_msg, sizeof sc_msg, fmt, ap);
    va_end(ap);
    return sc_msg;
}

typedef struct sc_stack {
    char *map;
    size_t map_len;
    char *lo; /* Lowest usable byte, just above the guard page. */
    char *hi; /* One past the highest usable byte. */
    unsigned vg_id; /* Valgrind's id for the stack; 0 outside valgrind. */
} sc_stack_t;

static int sc_stack_alloc(sc_stack_t *s)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    s->map_len = SC_STACK_SIZE + page;
    s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                  -1, 0);
    if (s->map == MAP_FAILED)
        return -errno;
    if (mprotect(s->map, page, PROT_NONE) != 0) {
        int e = -errno;
        munmap(s->map, s->map_len);
        return e;
    }
    s->lo = s->map + page;
    s->hi = s->map + s->map_len;
    /* Without this, valgrind takes the switch for a stack overflow of the
     * thread and reports every access on the fiber stack. */
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->hi - 1);
    memset(s->lo, SC_GARBAGE, SC_STACK_SIZE);
    return 0;
}

/* Under ASan, the redzones of frames left on a fiber stack stay poisoned
 * when the fiber is abandoned (the switch is not annotated here), and the
 * next mapping at that address would inherit them. */
static void sc_stack_free(sc_stack_t *s)
{
    ASAN_UNPOISON_MEMORY_REGION(s->lo, SC_STACK_SIZE);
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(s->map, s->map_len);
}

/* The caller's context and up to two fibers; every check uses these. */
static crew__ctx_t sc_main, sc_fib, sc_fib2;

/* Ends a fiber: switches away for good, as every entry function must. It
 * raises SIGABRT rather than calling abort(), and is not _Noreturn, so that
 * the compiler does not treat it as noreturn: under ASan each call would
 * then start with __asan_handle_no_return, which ASan rejects with a warning
 * on a stack it was not told about. */
static void sc_exit(crew__ctx_t *self, crew__ctx_t *to, void *arg)
{
    crew__ctx_switch(self, to, arg);
    fprintf(stderr, "switch_checks: a finished context was resumed\n");
    raise(SIGABRT);
}

/* Under pointer authentication (-mbranch-protection on a core with PAC) a
 * return address saved in a frame record carries a signature in its top
 * bits; xpaclri (hint 7, a NOP on cores without PAC) strips it from x30. */
static uintptr_t sc_strip_pac(uintptr_t ra)
{
#if defined(__aarch64__)
    register uintptr_t lr __asm__("x30") = ra;
    __asm__("hint 7" : "+r"(lr));
    return lr;
#else
    return ra;
#endif
}

static int sc_in_trampoline(uintptr_t ip)
{
    uintptr_t t = (uintptr_t)crew__ctx_trampoline;
    return ip > t && ip < t + SC_TRAMPOLINE_SIZE;
}

/* Keeps frames and calls from being optimised away. */
static void *volatile sc_sink;

/* ---- Fresh context receives the first switch's arg; args go both ways. ---- */

static struct {
    char in, back, again, done;
    void *entry_arg;
    void *resumed_with;
} sc_first;

static void sc_first_entry(void *arg)
{
    sc_first.entry_arg = arg;
    sc_first.resumed_with = crew__ctx_switch(&sc_fib, &sc_main, &sc_first.back);
    sc_exit(&sc_fib, &sc_main, &sc_first.done);
}

static const char *sc_check_first_arg(void)
{
    const char *err = NULL;
    sc_stack_t s;
    void *r1, *r2;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    crew__ctx_make(&sc_fib, s.hi, sc_first_entry);
    r1 = crew__ctx_switch(&sc_main, &sc_fib, &sc_first.in);
    r2 = crew__ctx_switch(&sc_main, &sc_fib, &sc_first.again);
    sc_stack_free(&s);

    SC_EXPECT(sc_first.entry_arg == &sc_first.in, "entry got %p, expected the first switch's arg %p",
              sc_first.entry_arg, (void *)&sc_first.in);
    SC_EXPECT(r1 == &sc_first.back, "caller's switch returned %p, expected the fiber's arg %p", r1,
              (void *)&sc_first.back);
    SC_EXPECT(sc_first.resumed_with == &sc_first.again, "fiber's switch returned %p, expected %p",
              sc_first.resumed_with, (void *)&sc_first.again);
    SC_EXPECT(r2 == &sc_first.done, "caller's second switch returned %p, expected %p", r2,
              (void *)&sc_first.done);
    return err;
}

/* ---- Switches between two fibers, not only to and from the caller. ---- */

static struct {
    void *a_got, *b_got, *a_resumed, *b_resumed;
} sc_chain;

static void sc_chain_b(void *arg)
{
    sc_chain.b_got = arg;
    sc_chain.b_resumed = crew__ctx_switch(&sc_fib2, &sc_main, (void *)3);
    sc_exit(&sc_fib2, &sc_main, (void *)7);
}

static void sc_chain_a(void *arg)
{
    sc_chain.a_got = arg;
    /* From one fiber into a fresh one; the caller resumes this fiber later. */
    sc_chain.a_resumed = crew__ctx_switch(&sc_fib, &sc_fib2, (void *)2);
    sc_exit(&sc_fib, &sc_main, (void *)5);
}

static const char *sc_check_fiber_to_fiber(void)
{
    const char *err = NULL;
    sc_stack_t sa, sb;
    void *r1, *r2, *r3;

    if (sc_stack_alloc(&sa) != 0)
        return sc_fail("stack allocation failed");
    if (sc_stack_alloc(&sb) != 0) {
        sc_stack_free(&sa);
        return sc_fail("stack allocation failed");
    }
    crew__ctx_make(&sc_fib, sa.hi, sc_chain_a);
    crew__ctx_make(&sc_fib2, sb.hi, sc_chain_b);
    r1 = crew__ctx_switch(&sc_main, &sc_fib, (void *)1);
    r2 = crew__ctx_switch(&sc_main, &sc_fib, (void *)4);
    r3 = crew__ctx_switch(&sc_main, &sc_fib2, (void *)6);
    sc_stack_free(&sa);
    sc_stack_free(&sb);

    SC_EXPECT(sc_chain.a_got == (void *)1, "fiber A's entry got %p, expected 1", sc_chain.a_got);
    SC_EXPECT(sc_chain.b_got == (void *)2, "fiber B's entry (started by A) got %p, expected 2",
              sc_chain.b_got);
    SC_EXPECT(r1 == (void *)3, "caller resumed by B with %p, expected 3", r1);
    SC_EXPECT(sc_chain.a_resumed == (void *)4, "A resumed by the caller with %p, expected 4",
              sc_chain.a_resumed);
    SC_EXPECT(r2 == (void *)5, "caller got %p from A's exit, expected 5", r2);
    SC_EXPECT(sc_chain.b_resumed == (void *)6, "B resumed with %p, expected 6", sc_chain.b_resumed);
    SC_EXPECT(r3 == (void *)7, "caller got %p from B's exit, expected 7", r3);
    return err;
}

/* ---- Ping-pong: every switch returns exactly the arg it was resumed with. ---- */

static struct {
    unsigned long rounds, bad;
    uintptr_t first_bad, first_bad_expected;
} sc_pp;

/* The caller sends odd numbers 1, 3, 5, ... and 0 to stop; the fiber answers
 * each with the number plus one. */
static void sc_pp_entry(void *arg)
{
    uintptr_t v = (uintptr_t)arg, expect = 1;

    while (v != 0) {
        if (v != expect && !sc_pp.bad++) {
            sc_pp.first_bad = v;
            sc_pp.first_bad_expected = expect;
        }
        sc_pp.rounds++;
        expect = v + 2;
        v = (uintptr_t)crew__ctx_switch(&sc_fib, &sc_main, (void *)(v + 1));
    }
    sc_exit(&sc_fib, &sc_main, NULL);
}

static const char *sc_check_ping_pong(unsigned long n)
{
    const char *err = NULL;
    sc_stack_t s;
    unsigned long bad = 0;
    uintptr_t first_bad = 0, first_sent = 0;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    memset(&sc_pp, 0, sizeof sc_pp);
    crew__ctx_make(&sc_fib, s.hi, sc_pp_entry);
    for (unsigned long i = 0; i < n; i++) {
        uintptr_t sent = 2 * (uintptr_t)i + 1;
        uintptr_t r = (uintptr_t)crew__ctx_switch(&sc_main, &sc_fib, (void *)sent);
        if (r != sent + 1 && !bad++) {
            first_bad = r;
            first_sent = sent;
        }
    }
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    sc_stack_free(&s);

    SC_EXPECT(bad == 0, "%lu of %lu replies wrong; first: sent %#lx, got %#lx", bad, n,
              (unsigned long)first_sent, (unsigned long)first_bad);
    SC_EXPECT(sc_pp.bad == 0, "fiber saw %lu wrong args; first: %#lx, expected %#lx", sc_pp.bad,
              (unsigned long)sc_pp.first_bad, (unsigned long)sc_pp.first_bad_expected);
    SC_EXPECT(sc_pp.rounds == n, "fiber ran %lu rounds, expected %lu", sc_pp.rounds, n);
    return err;
}

/* ---- Callee-saved registers, as the compiler uses them. ---- */

static volatile uint64_t sc_live_src[20] = {3, 5, 7, 11, 13, 17, 19, 23, 29, 31,
                                            37, 41, 43, 47, 53, 59, 61, 67, 71, 73};

/* More integer and floating-point values live across the switch than there
 * are callee-saved registers, so at -O2 the compiler fills every callee-saved
 * register (x86_64: rbx, rbp, r12-r15; aarch64: x19-x28, d8-d15) and spills
 * the rest. With from == NULL it computes the reference result. */
static __attribute__((noinline)) uint64_t sc_live(uint64_t salt, crew__ctx_t *from,
                                                  crew__ctx_t *to)
{
    uint64_t a0 = sc_live_src[0] * salt, a1 = sc_live_src[1] ^ salt, a2 = sc_live_src[2] + salt;
    uint64_t a3 = sc_live_src[3] * (salt + 1), a4 = sc_live_src[4] ^ (salt << 3);
    uint64_t a5 = sc_live_src[5] + (salt >> 2), a6 = sc_live_src[6] * (salt | 1);
    uint64_t a7 = sc_live_src[7] ^ (salt * 5), a8 = sc_live_src[8] + (salt * 9);
    uint64_t a9 = sc_live_src[9] * (salt + 7), a10 = sc_live_src[10] ^ (salt >> 5);
    uint64_t a11 = sc_live_src[11] + (salt << 7);
    double d0 = (double)sc_live_src[12] * (double)salt, d1 = (double)sc_live_src[13] / 3.0;
    double d2 = (double)sc_live_src[14] + 0.25 * (double)salt, d3 = (double)sc_live_src[15] * 1.5;
    double d4 = (double)sc_live_src[16] - (double)salt, d5 = (double)sc_live_src[17] / 7.0;
    double d6 = (double)sc_live_src[18] * 0.125, d7 = (double)sc_live_src[19] + 1e9;

    if (from)
        crew__ctx_switch(from, to, NULL);
    return a0 + 3 * a1 + 5 * a2 + 7 * a3 + 11 * a4 + 13 * a5 + 17 * a6 + 19 * a7 + 23 * a8 +
           29 * a9 + 31 * a10 + 37 * a11 +
           (uint64_t)(d0 * 2.0 + d1 * 3.0 + d2 * 5.0 + d3 * 7.0 + d4 * 11.0 + d5 * 13.0 +
                      d6 * 17.0 + d7 * 19.0);
}

#define SC_SALT_MAIN 0x9E3779B9u
#define SC_SALT_FIB 0x85EBCA6Bu

static uint64_t sc_live_fib_result;

static void sc_live_entry(void *arg)
{
    sc_live_fib_result = sc_live(SC_SALT_FIB, &sc_fib, &sc_main);
    sc_exit(&sc_fib, &sc_main, NULL);
}

static const char *sc_check_callee_saved_c(void)
{
    const char *err = NULL;
    sc_stack_t s;
    uint64_t got;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    crew__ctx_make(&sc_fib, s.hi, sc_live_entry);
    /* The fiber runs its own sc_live() up to its switch back, overwriting the
     * registers with its values while the caller's are saved. */
    got = sc_live(SC_SALT_MAIN, &sc_main, &sc_fib);
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    sc_stack_free(&s);

    SC_EXPECT(got == sc_live(SC_SALT_MAIN, NULL, NULL),
              "caller's live values changed across the switch: %#llx != %#llx",
              (unsigned long long)got, (unsigned long long)sc_live(SC_SALT_MAIN, NULL, NULL));
    SC_EXPECT(sc_live_fib_result == sc_live(SC_SALT_FIB, NULL, NULL),
              "fiber's live values changed across the switch: %#llx != %#llx",
              (unsigned long long)sc_live_fib_result,
              (unsigned long long)sc_live(SC_SALT_FIB, NULL, NULL));
    return err;
}

/* ---- Callee-saved registers, every one of them, set from assembly. ---- */

/* sc_probe(from, to, arg, seed) loads seed + k into the k-th callee-saved
 * register, calls crew__ctx_switch(from, to, arg), and returns a mask with
 * bit k - 1 set for each register that no longer holds seed + k. */
uint64_t sc_probe(crew__ctx_t *from, crew__ctx_t *to, void *arg, uint64_t seed);

#if defined(__x86_64__)

/* Bits: 0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14, 5 r15. */
#define SC_PROBE_REGS "rbx rbp r12 r13 r14 r15"
#define SC_X86_SET(reg, k) "    leaq " #k "(%rcx), %" #reg "\n"
#define SC_X86_CHECK(reg, k)                                                                   \
    "    leaq " #k "(%rcx), %rdx\n"                                                             \
    "    cmpq %rdx, %" #reg "\n"                                                                \
    "    je 1f\n"                                                                               \
    "    orl $(1 << (" #k " - 1)), %eax\n"                                                      \
    "1:\n"

__asm__(".text\n"
        ".globl sc_probe\n"
        ".hidden sc_probe\n"
        ".type sc_probe, @function\n"
        ".p2align 4\n"
        "sc_probe:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        /* The seed, kept for the comparison; the seventh push also aligns
         * rsp to 16 for the call. */
        "    pushq %rcx\n"
        SC_X86_SET(rbx, 1) SC_X86_SET(rbp, 2) SC_X86_SET(r12, 3) SC_X86_SET(r13, 4)
        SC_X86_SET(r14, 5) SC_X86_SET(r15, 6)
        "    call crew__ctx_switch\n"
        "    popq %rcx\n"
        "    xorl %eax, %eax\n"
        SC_X86_CHECK(rbx, 1) SC_X86_CHECK(rbp, 2) SC_X86_CHECK(r12, 3) SC_X86_CHECK(r13, 4)
        SC_X86_CHECK(r14, 5) SC_X86_CHECK(r15, 6)
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size sc_probe, .-sc_probe\n");

#elif defined(__aarch64__)

/* Bits: 0-9 x19-x28, 10-17 d8-d15, 18 x29. */
#define SC_PROBE_REGS "x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 d8 d9 d10 d11 d12 d13 d14 d15 x29"
#define SC_A64_SET_X(reg, k) "    add " #reg ", x3, #" #k "\n"
#define SC_A64_SET_D(reg, k) "    add x9, x3, #" #k "\n    fmov " #reg ", x9\n"
#define SC_A64_CHECK_X(reg, k)                                                                 \
    "    add x9, x3, #" #k "\n"                                                                 \
    "    cmp " #reg ", x9\n"                                                                    \
    "    b.eq 1f\n"                                                                             \
    "    orr x0, x0, #(1 << (" #k " - 1))\n"                                                    \
    "1:\n"
#define SC_A64_CHECK_D(reg, k) "    fmov x10, " #reg "\n" SC_A64_CHECK_X(x10, k)

__asm__(".text\n"
        ".globl sc_probe\n"
        ".hidden sc_probe\n"
        ".type sc_probe, %function\n"
        ".p2align 4\n"
        "sc_probe:\n"
        "    hint 34\n" /* BTI landing pad, for builds with branch protection */
        "    stp x29, x30, [sp, #-176]!\n"
        "    mov x29, sp\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    str x3, [sp, #160]\n"
        SC_A64_SET_X(x19, 1) SC_A64_SET_X(x20, 2) SC_A64_SET_X(x21, 3) SC_A64_SET_X(x22, 4)
        SC_A64_SET_X(x23, 5) SC_A64_SET_X(x24, 6) SC_A64_SET_X(x25, 7) SC_A64_SET_X(x26, 8)
        SC_A64_SET_X(x27, 9) SC_A64_SET_X(x28, 10)
        SC_A64_SET_D(d8, 11) SC_A64_SET_D(d9, 12) SC_A64_SET_D(d10, 13) SC_A64_SET_D(d11, 14)
        SC_A64_SET_D(d12, 15) SC_A64_SET_D(d13, 16) SC_A64_SET_D(d14, 17) SC_A64_SET_D(d15, 18)
        SC_A64_SET_X(x29, 19)
        "    bl crew__ctx_switch\n"
        "    ldr x3, [sp, #160]\n"
        "    mov x0, #0\n"
        SC_A64_CHECK_X(x19, 1) SC_A64_CHECK_X(x20, 2) SC_A64_CHECK_X(x21, 3)
        SC_A64_CHECK_X(x22, 4) SC_A64_CHECK_X(x23, 5) SC_A64_CHECK_X(x24, 6)
        SC_A64_CHECK_X(x25, 7) SC_A64_CHECK_X(x26, 8) SC_A64_CHECK_X(x27, 9)
        SC_A64_CHECK_X(x28, 10)
        SC_A64_CHECK_D(d8, 11) SC_A64_CHECK_D(d9, 12) SC_A64_CHECK_D(d10, 13)
        SC_A64_CHECK_D(d11, 14) SC_A64_CHECK_D(d12, 15) SC_A64_CHECK_D(d13, 16)
        SC_A64_CHECK_D(d14, 17) SC_A64_CHECK_D(d15, 18)
        SC_A64_CHECK_X(x29, 19)
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size sc_probe, .-sc_probe\n");

#else
#error "switch_checks.h supports x86_64 and aarch64"
#endif

/* Distinct per side, so that registers swapped between contexts show. */
#define SC_SEED_MAIN 0x1111000000000000ull
#define SC_SEED_FIB 0x2222000000000000ull

static uint64_t sc_probe_fib_mask;

static void sc_probe_entry(void *arg)
{
    sc_probe_fib_mask = sc_probe(&sc_fib, &sc_main, NULL, SC_SEED_FIB);
    sc_exit(&sc_fib, &sc_main, NULL);
}

static const char *sc_check_callee_saved_asm(void)
{
    const char *err = NULL;
    sc_stack_t s;
    uint64_t mask;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    crew__ctx_make(&sc_fib, s.hi, sc_probe_entry);
    mask = sc_probe(&sc_main, &sc_fib, NULL, SC_SEED_MAIN);
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    sc_stack_free(&s);

    SC_EXPECT(mask == 0, "caller's callee-saved registers clobbered, mask %#llx (bits: %s)",
              (unsigned long long)mask, SC_PROBE_REGS);
    SC_EXPECT(sc_probe_fib_mask == 0, "fiber's callee-saved registers clobbered, mask %#llx (bits: %s)",
              (unsigned long long)sc_probe_fib_mask, SC_PROBE_REGS);
    return err;
}

/* ---- Floating-point control state is per context. ---- */

/* The raw control registers: x86_64 MXCSR << 16 | x87 control word (MXCSR's
 * sticky status bits masked off); aarch64 FPCR. sc_fpctl_tweak() sets control
 * bits that fesetround() leaves alone, differently for variant 0 and 1. */
#if defined(__x86_64__)

#define SC_FPCTL_DEFAULT ((0x1F80ull << 16) | 0x037F) /* The ABI's initial state. */

static uint64_t sc_fpctl_get(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw) : : "memory");
    return (uint64_t)(mxcsr & ~0x3Fu) << 16 | cw;
}

static void sc_fpctl_set(uint64_t v)
{
    uint32_t mxcsr = (uint32_t)(v >> 16);
    uint16_t cw = (uint16_t)v;
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(cw) : "memory");
}

/* Variant 0: flush-to-zero and x87 single precision; variant 1:
 * denormals-are-zero and x87 double precision. */
static void sc_fpctl_tweak(int variant)
{
    uint64_t v = sc_fpctl_get() & ~(uint64_t)0x0300;
    sc_fpctl_set(variant ? v | (0x0040ull << 16) | 0x0200 : v | (0x8000ull << 16));
}

#elif defined(__aarch64__)

#define SC_FPCTL_DEFAULT 0ull /* What Linux starts a process with. */

static uint64_t sc_fpctl_get(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v) : : "memory");
    return v;
}

static void sc_fpctl_set(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(v) : "memory");
}

/* Variant 0: flush-to-zero (FZ); variant 1: default NaN (DN). */
static void sc_fpctl_tweak(int variant)
{
    sc_fpctl_set(sc_fpctl_get() | (variant ? 1ull << 25 : 1ull << 24));
}

#endif

static volatile double sc_one = 1.0, sc_three = 3.0;

static struct {
    int fresh_round, set_round, round_after;
    uint64_t fresh_ctl, set_ctl, ctl_after;
    double q_before, q_after;
} sc_fenv;

static void sc_fenv_entry(void *arg)
{
    sc_fenv.fresh_round = fegetround();
    sc_fenv.fresh_ctl = sc_fpctl_get();
    fesetround(FE_UPWARD);
    sc_fpctl_tweak(1);
    sc_fenv.set_round = fegetround();
    sc_fenv.set_ctl = sc_fpctl_get();
    sc_fenv.q_before = sc_one / sc_three;
    crew__ctx_switch(&sc_fib, &sc_main, NULL);
    sc_fenv.round_after = fegetround();
    sc_fenv.ctl_after = sc_fpctl_get();
    sc_fenv.q_after = sc_one / sc_three;
    sc_exit(&sc_fib, &sc_main, NULL);
}

static const char *sc_check_fenv_per_context(void)
{
    const char *err = NULL;
    sc_stack_t s;
    fenv_t saved;
    int set_round, round_after;
    uint64_t set_ctl, ctl_after;
    double q_before, q_after;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    fegetenv(&saved);
    fesetround(FE_DOWNWARD);
    sc_fpctl_tweak(0);
    set_round = fegetround();
    set_ctl = sc_fpctl_get();
    q_before = sc_one / sc_three;
    crew__ctx_make(&sc_fib, s.hi, sc_fenv_entry);
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    round_after = fegetround();
    ctl_after = sc_fpctl_get();
    q_after = sc_one / sc_three;
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    fesetenv(&saved);
    sc_stack_free(&s);

    SC_EXPECT(set_round == FE_DOWNWARD && sc_fenv.set_round == FE_UPWARD,
              "fesetround did not take effect (caller %#x, fiber %#x)", set_round, sc_fenv.set_round);
    SC_EXPECT(sc_fenv.fresh_round == FE_TONEAREST && sc_fenv.fresh_ctl == SC_FPCTL_DEFAULT,
              "fresh context started with rounding %#x and control %#llx, expected the initial "
              "state %#llx (round to nearest) whatever its creator had (%#llx)",
              sc_fenv.fresh_round, (unsigned long long)sc_fenv.fresh_ctl,
              (unsigned long long)SC_FPCTL_DEFAULT, (unsigned long long)set_ctl);
    SC_EXPECT(round_after == FE_DOWNWARD && ctl_after == set_ctl,
              "caller's FP control changed by the fiber: rounding %#x, control %#llx, expected "
              "%#x, %#llx",
              round_after, (unsigned long long)ctl_after, FE_DOWNWARD, (unsigned long long)set_ctl);
    SC_EXPECT(sc_fenv.round_after == FE_UPWARD && sc_fenv.ctl_after == sc_fenv.set_ctl,
              "fiber's FP control changed by the caller: rounding %#x, control %#llx, expected "
              "%#x, %#llx",
              sc_fenv.round_after, (unsigned long long)sc_fenv.ctl_after, FE_UPWARD,
              (unsigned long long)sc_fenv.set_ctl);
    /* Valgrind computes in round-to-nearest whatever the rounding mode. */
    SC_EXPECT(RUNNING_ON_VALGRIND ||
                  (q_before == q_after && sc_fenv.q_before == sc_fenv.q_after &&
                   q_before < sc_fenv.q_before),
              "1/3 rounded inconsistently: caller %a then %a (down), fiber %a then %a (up)",
              q_before, q_after, sc_fenv.q_before, sc_fenv.q_after);
    return err;
}

/* ---- Stack alignment and bounds at the entry. ---- */

/* sc_align_entry records the stack pointer exactly as the trampoline's call
 * left it, then tail-jumps to sc_align_entry_c with that stack unchanged. */
__attribute__((visibility("hidden"))) uintptr_t sc_entry_sp;
void sc_align_entry(void *arg);
__attribute__((visibility("hidden"), noinline, used)) void sc_align_entry_c(void *arg)
{
    sc_exit(&sc_fib, &sc_main, arg);
}

#if defined(__x86_64__)
/* At a function's entry, rsp + 8 is a multiple of 16 (the call pushed the
 * return address onto a 16-byte aligned stack). */
#define SC_ENTRY_SP_ALIGNED(sp) ((((sp) + 8) & 15) == 0)
__asm__(".text\n"
        ".globl sc_align_entry\n"
        ".hidden sc_align_entry\n"
        ".type sc_align_entry, @function\n"
        "sc_align_entry:\n"
        "    movq %rsp, sc_entry_sp(%rip)\n"
        "    jmp sc_align_entry_c\n"
        ".size sc_align_entry, .-sc_align_entry\n");
#elif defined(__aarch64__)
/* AAPCS64: sp is 16-byte aligned at all times. */
#define SC_ENTRY_SP_ALIGNED(sp) (((sp) & 15) == 0)
__asm__(".text\n"
        ".globl sc_align_entry\n"
        ".hidden sc_align_entry\n"
        ".type sc_align_entry, %function\n"
        "sc_align_entry:\n"
        "    hint 34\n"
        "    mov x9, sp\n"
        "    adrp x10, sc_entry_sp\n"
        "    str x9, [x10, #:lo12:sc_entry_sp]\n"
        "    b sc_align_entry_c\n"
        ".size sc_align_entry, .-sc_align_entry\n");
#endif

/* Bytes just above stack_hi, which the context must never write. */
#define SC_CANARY_LEN 64
#define SC_CANARY 0x5A

static const char *sc_check_entry_alignment(void)
{
    const char *err = NULL;
    sc_stack_t s;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    /* Every misalignment of stack_hi, which crew__ctx_make must round down. */
    for (unsigned k = 0; k < 16 && !err; k++) {
        char *hi = s.hi - SC_CANARY_LEN - k;
        uintptr_t sp;
        void *r;

        memset(hi, SC_CANARY, (size_t)(s.hi - hi));
        sc_entry_sp = 0;
        crew__ctx_make(&sc_fib, hi, sc_align_entry);
        r = crew__ctx_switch(&sc_main, &sc_fib, (void *)(uintptr_t)(k + 1));
        sp = sc_entry_sp;
        SC_EXPECT(r == (void *)(uintptr_t)(k + 1), "stack_hi - %u: entry got arg %p, expected %u", k,
                  r, k + 1);
        SC_EXPECT(SC_ENTRY_SP_ALIGNED(sp), "stack_hi %p: sp at entry %#lx is misaligned", (void *)hi,
                  (unsigned long)sp);
        SC_EXPECT(sp <= (uintptr_t)hi && sp >= (uintptr_t)hi - 64,
                  "stack_hi %p: sp at entry %#lx is not just below stack_hi", (void *)hi,
                  (unsigned long)sp);
        for (char *p = hi; p < s.hi; p++)
            SC_EXPECT(*(unsigned char *)p == SC_CANARY,
                      "stack_hi %p: byte at stack_hi + %ld written, above the stack", (void *)hi,
                      (long)(p - hi));
    }
    sc_stack_free(&s);
    return err;
}

/* ---- The frame-pointer chain ends at the entry; unwinders stop there. ---- */

static struct {
    const char *lo, *hi;
    void *entry_fp, *entry_saved_fp, *entry_ra;
    void *walk_last;
    int walk_frames;
    const char *walk_err;
    _Unwind_Reason_Code uw_code;
    int uw_frames;
    uintptr_t uw_last_ip;
} sc_fp;

/* Walks the frame-pointer chain from here, as perf --call-graph=fp does:
 * each frame record holds the caller's frame pointer, then the return
 * address, on x86_64 and aarch64 alike. */
static __attribute__((noinline)) void sc_fp_walk(void)
{
    void **fp = __builtin_frame_address(0);

    sc_fp.walk_err = NULL;
    sc_fp.walk_frames = 0;
    while (fp) {
        void **next = fp[0];
        if ((const char *)fp < sc_fp.lo || (const char *)fp + 16 > sc_fp.hi) {
            sc_fp.walk_err = "a frame pointer left the fiber's stack";
            return;
        }
        if (++sc_fp.walk_frames > 64) {
            sc_fp.walk_err = "the chain did not end within 64 frames";
            return;
        }
        if (next && next <= fp) {
            sc_fp.walk_err = "the chain went down the stack";
            return;
        }
        sc_fp.walk_last = fp;
        fp = next;
    }
}

/* libgcc reports one last frame with IP 0 once the return address is
 * undefined; the frame that matters is the last real one. */
static _Unwind_Reason_Code sc_unwind_frame(struct _Unwind_Context *uc, void *arg)
{
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(uc);

    if (++sc_fp.uw_frames > 64)
        return _URC_NORMAL_STOP;
    if (ip)
        sc_fp.uw_last_ip = ip;
    return _URC_NO_REASON;
}

/* Unwinds with the DWARF CFI, as gdb and perf --call-graph=dwarf do. */
static __attribute__((noinline)) void sc_unwind(void)
{
    sc_fp.uw_frames = 0;
    sc_fp.uw_code = _Unwind_Backtrace(sc_unwind_frame, NULL);
}

/* A few frames between the entry and the walkers; each takes its frame
 * address so that it keeps a frame record even without
 * -fno-omit-frame-pointer, and does work after its call so that the call
 * is not a tail call. */
static __attribute__((noinline)) void sc_fp_deep(int n)
{
    sc_sink = __builtin_frame_address(0);
    if (n > 0) {
        sc_fp_deep(n - 1);
    } else {
        sc_fp_walk();
        sc_unwind();
    }
    sc_sink = __builtin_frame_address(0);
}

static void sc_fp_entry(void *arg)
{
    void **fp = __builtin_frame_address(0);

    sc_fp.entry_fp = fp;
    sc_fp.entry_saved_fp = fp[0];
    sc_fp.entry_ra = fp[1];
    sc_fp_deep(3);
    sc_exit(&sc_fib, &sc_main, NULL);
}

static const char *sc_check_frame_chain(void)
{
    const char *err = NULL;
    sc_stack_t s;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    memset(&sc_fp, 0, sizeof sc_fp);
    sc_fp.lo = s.lo;
    sc_fp.hi = s.hi;
    crew__ctx_make(&sc_fib, s.hi, sc_fp_entry);
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    sc_stack_free(&s);

    SC_EXPECT(sc_fp.entry_saved_fp == NULL,
              "entry function's saved frame pointer is %p, expected 0 (end of chain)",
              sc_fp.entry_saved_fp);
    SC_EXPECT(sc_in_trampoline(sc_strip_pac((uintptr_t)sc_fp.entry_ra)),
              "entry function's return address %p is not in crew__ctx_trampoline (%p)",
              sc_fp.entry_ra, (void *)(uintptr_t)crew__ctx_trampoline);
    SC_EXPECT(!sc_fp.walk_err, "frame-pointer walk: %s after %d frames", sc_fp.walk_err,
              sc_fp.walk_frames);
    SC_EXPECT(sc_fp.walk_last == sc_fp.entry_fp,
              "frame-pointer walk ended at %p after %d frames, not at the entry frame %p",
              sc_fp.walk_last, sc_fp.walk_frames, sc_fp.entry_fp);
    SC_EXPECT(sc_fp.walk_frames >= 5, "frame-pointer walk saw %d frames, expected at least 5",
              sc_fp.walk_frames);
    return err;
}

static const char *sc_check_unwind(void)
{
    const char *err = NULL;
    sc_stack_t s;

    if (sc_stack_alloc(&s) != 0)
        return sc_fail("stack allocation failed");
    memset(&sc_fp, 0, sizeof sc_fp);
    sc_fp.lo = s.lo;
    sc_fp.hi = s.hi;
    crew__ctx_make(&sc_fib, s.hi, sc_fp_entry);
    crew__ctx_switch(&sc_main, &sc_fib, NULL);
    sc_stack_free(&s);

    SC_EXPECT(sc_fp.uw_code == _URC_END_OF_STACK,
              "_Unwind_Backtrace returned %d after %d frames, expected _URC_END_OF_STACK (%d)",
              (int)sc_fp.uw_code, sc_fp.uw_frames, (int)_URC_END_OF_STACK);
    SC_EXPECT(sc_in_trampoline(sc_fp.uw_last_ip),
              "CFI unwind ended at %#lx after %d frames, not in crew__ctx_trampoline (%p)",
              (unsigned long)sc_fp.uw_last_ip, sc_fp.uw_frames,
              (void *)(uintptr_t)crew__ctx_trampoline);
    return err;
}

#endif
