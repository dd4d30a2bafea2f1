/*
 * Thread names change under running threads: the main thread renames itself with
 * prctl(PR_SET_NAME), and renames its worker with pthread_setname_np (a write to
 * /proc/self/task/TID/comm, from another thread). Every call must carry the name its thread
 * had when the call returned. Prints the worker's tid.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int ready[2], go[2];
static pid_t worker_tid;

static void *worker(void *arg)
{
    char c;
    (void)arg;
    worker_tid = (pid_t)syscall(SYS_gettid);
    syscall(SYS_getppid); /* the name it was born with: its creator's */
    if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
        return NULL;
    for (int i = 0; i < 2; i++)
        syscall(SYS_getppid); /* renamed by the main thread meanwhile */
    return NULL;
}

int main(void)
{
    pthread_t t;
    char c;
    for (int i = 0; i < 3; i++)
        syscall(SYS_getppid);
    prctl(PR_SET_NAME, "renamed");
    for (int i = 0; i < 4; i++)
        syscall(SYS_getppid);
    if (pipe(ready) || pipe(go))
        return 1;
    pthread_create(&t, NULL, worker, NULL);
    if (read(ready[0], &c, 1) != 1)
        return 1;
    if (pthread_setname_np(t, "peer-set"))
        return 1;
    if (write(go[1], "g", 1) != 1)
        return 1;
    pthread_join(t, NULL);
    printf("worker_tid=%d\n", worker_tid);
    return 0;
}
