/* White-box tests of the context switch alone (runtime/switch.h): no
 * scheduler, fiber stacks mmap'd by the test. The checks live in
 * cross/switch_checks.h, shared with the plain-C self-test that
 * tests/cross/aarch64.sh runs on aarch64 under qemu. */
#include "harness.h"

#include "cross/switch_checks.h"

#define SWITCH_PING_PONG_ROUNDS 1000000ul
#define SWITCH_WATCHDOG_SECONDS 30

/* Each case runs one check on this thread's stack and fails with its
 * message. */
#define SWITCH_CASE(name, call)                                                                \
    static void test_switch_##name(void **state)                                               \
    {                                                                                          \
        const char *err;                                                                       \
        (void)state;                                                                           \
        crew_test_watchdog(SWITCH_WATCHDOG_SECONDS);                                           \
        err = call;                                                                            \
        alarm(0);                                                                              \
        if (err)                                                                               \
            fail_msg("%s", err);                                                               \
    }

SWITCH_CASE(first_arg, sc_check_first_arg())
SWITCH_CASE(fiber_to_fiber, sc_check_fiber_to_fiber())
SWITCH_CASE(ping_pong, sc_check_ping_pong(SWITCH_PING_PONG_ROUNDS / crew_test_slowdown()))
SWITCH_CASE(callee_saved_c, sc_check_callee_saved_c())
SWITCH_CASE(callee_saved_asm, sc_check_callee_saved_asm())
SWITCH_CASE(fenv_per_context, sc_check_fenv_per_context())
SWITCH_CASE(entry_alignment, sc_check_entry_alignment())
SWITCH_CASE(frame_chain, sc_check_frame_chain())
SWITCH_CASE(unwind, sc_check_unwind())

static const struct CMUnitTest switch_tests[] = {
    cmocka_unit_test(test_switch_first_arg),
    cmocka_unit_test(test_switch_fiber_to_fiber),
    cmocka_unit_test(test_switch_ping_pong),
    cmocka_unit_test(test_switch_callee_saved_c),
    cmocka_unit_test(test_switch_callee_saved_asm),
    cmocka_unit_test(test_switch_fenv_per_context),
    cmocka_unit_test(test_switch_entry_alignment),
    cmocka_unit_test(test_switch_frame_chain),
    cmocka_unit_test(test_switch_unwind),
};

CREW_TEST_MAIN("switch", switch_tests)
