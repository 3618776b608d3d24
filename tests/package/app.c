#include <crew.h>
#include <stdint.h>
#include <stdio.h>

/* A child task: runs on its own stack, on whichever worker picks it up. */
static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(n * n);
}

/* The main task. crew_join suspends this task only; its worker runs others meanwhile. */
static void *main_task(void *arg)
{
    crew_task_t *child;
    void *result = NULL;
    if (crew_spawn(square, arg, NULL, &child) != 0 || crew_join(child, &result) != 0)
        return NULL;
    return result;
}

int main(void)
{
    void *result = NULL;
    int err = crew_run(main_task, (void *)(intptr_t)7, NULL, &result);
    if (err != 0) {
        fprintf(stderr, "crew_run: %s\n", crew_strerror(err));
        return 1;
    }
    printf("7 * 7 = %ld\n", (long)(intptr_t)result);
    return (intptr_t)result == 49 ? 0 : 1;
}
