/* Self-checking test of the context switch for targets without cmocka: the
 * checks of switch_checks.h, which tests/test_switch.c also runs. Built and
 * run by tests/cross/aarch64.sh, natively and for aarch64 under qemu-user.
 * Prints one line per check and exits non-zero if any failed. Each check runs
 * in a child process, because a broken switch usually crashes rather than
 * returns, and the report should still name the check. */
#include <stdio.h>
#include <sys/wait.h>

#include "switch_checks.h"

#define SC_PING_PONG_ROUNDS 1000000ul

static const char *sc_ping_pong_1e6(void)
{
    return sc_check_ping_pong(SC_PING_PONG_ROUNDS);
}

static const struct {
    const char *name;
    const char *(*run)(void);
} checks[] = {
    {"first_arg", sc_check_first_arg},
    {"fiber_to_fiber", sc_check_fiber_to_fiber},
    {"ping_pong", sc_ping_pong_1e6},
    {"callee_saved_c", sc_check_callee_saved_c},
    {"callee_saved_asm", sc_check_callee_saved_asm},
    {"fenv_per_context", sc_check_fenv_per_context},
    {"entry_alignment", sc_check_entry_alignment},
    {"frame_chain", sc_check_frame_chain},
    {"unwind", sc_check_unwind},
};

/* Runs one check in a child; returns 0 if it passed. */
static int run_check(const char *name, const char *(*run)(void))
{
    int status;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        const char *err = run();
        if (err)
            printf("FAIL %s: %s\n", name, err);
        else
            printf("ok   %s\n", name);
        fflush(stdout);
        _exit(err != NULL);
    }
    if (waitpid(pid, &status, 0) != pid) {
        printf("FAIL %s: waitpid: %s\n", name, strerror(errno));
        return 1;
    }
    if (WIFSIGNALED(status)) {
        printf("FAIL %s: killed by signal %d (%s)\n", name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
        return 1;
    }
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

/* With a check's name as argument, runs just that check in this process,
 * which is what a debugger wants (see gdb_switch_cfi.py). */
int main(int argc, char **argv)
{
    int failed = 0;
    size_t n = sizeof checks / sizeof checks[0];

    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], checks[i].name) == 0) {
            const char *err = checks[i].run();
            printf("%s %s%s%s\n", err ? "FAIL" : "ok  ", checks[i].name, err ? ": " : "",
                   err ? err : "");
            return err != NULL;
        }
        if (argc <= 1)
            failed += run_check(checks[i].name, checks[i].run);
    }
    if (argc > 1) {
        printf("no check named %s\n", argv[1]);
        return 2;
    }
    printf("%d of %zu checks failed\n", failed, n);
    return failed != 0;
}
