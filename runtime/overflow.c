/* Stack overflow reports.
 *
 * A task that runs off the low end of its stack hits the guard page and the
 * kernel raises SIGSEGV on that worker thread. The handler runs on the
 * worker's alternate signal stack (sigaltstack is per thread, so each worker
 * installs its own), checks whether the faulting address is in the running
 * task's guard page, and if so prints which task overflowed and aborts: a
 * stack overflow cannot be recovered from. Any other fault is passed on to
 * the handler that was installed before crew's, or to the default action.
 *
 * The handler is installed while at least one runtime that wants it exists
 * (CREW_RT_NO_OVERFLOW_HANDLER opts out) and the previous one is restored
 * when the last such runtime is destroyed. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "scheduler.h"

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned install_users;
static struct sigaction old_segv, old_bus;

/* Append s to buf (async-signal-safe string building). */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_u64(char *buf, size_t at, size_t cap, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at + 1 < cap)
        buf[at++] = tmp[--n];
    return at;
}

void crew__overflow_report(const crew_task_t *t)
{
    char buf[256];
    size_t n = 0;
    n = put_str(buf, n, sizeof buf, "crew: stack overflow in task '");
    n = put_str(buf, n, sizeof buf, t->name ? t->name : "");
    n = put_str(buf, n, sizeof buf, "' (id ");
    n = put_u64(buf, n, sizeof buf, t->id);
    n = put_str(buf, n, sizeof buf, ", stack size ");
    n = put_u64(buf, n, sizeof buf, crew__stack_class_size(t->stack_cls));
    n = put_str(buf, n, sizeof buf, " bytes); aborting\n");
    (void)!write(STDERR_FILENO, buf, n);
    /* abort() is async-signal-safe; restore the default action first so that
     * a handler for SIGABRT installed by the application cannot resume us. */
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    crew__worker_t *w = crew__worker_self();
    crew_task_t *t = w ? w->current : NULL;
    if (t && t->stack && crew__stack_is_guard_hit(t->stack, si->si_addr))
        crew__overflow_report(t);

    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        /* Returning re-executes the faulting access, which now gets the
         * default action (a core dump), as if crew had not been there. */
        signal(sig, SIG_DFL);
    } else {
        old->sa_handler(sig);
    }
}

int crew__overflow_install(void)
{
    int rc = 0;
    pthread_mutex_lock(&install_lock);
    if (install_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &old_segv) || sigaction(SIGBUS, &sa, &old_bus)) {
            rc = -errno;
            install_users = 0;
        }
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}

void crew__overflow_uninstall(void)
{
    pthread_mutex_lock(&install_lock);
    if (install_users && --install_users == 0) {
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
    }
    pthread_mutex_unlock(&install_lock);
}

int crew__overflow_thread_init(crew__worker_t *w)
{
    /* SIGSTKSZ is not a constant in glibc 2.34+; 64 KiB is ample for the handler. */
    w->altstack_size = 64 * 1024;
    w->altstack = crew__alloc(w->altstack_size, 4096);
    if (!w->altstack)
        return -ENOMEM;
    stack_t ss = { .ss_sp = w->altstack, .ss_size = w->altstack_size, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL)) {
        crew__free(w->altstack, w->altstack_size, 4096);
        w->altstack = NULL;
        return -errno;
    }
    return 0;
}

void crew__overflow_thread_fini(crew__worker_t *w)
{
    if (!w->altstack)
        return;
    stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    sigaltstack(&ss, NULL);
    crew__free(w->altstack, w->altstack_size, 4096);
    w->altstack = NULL;
}
