/*
 * A non-leader thread calls execve while the leader waits in pause(). The kernel kills the
 * leader, gives the exec'ing thread the leader's tid, and runs the new image: the capture
 * must keep that execve and go on tracing /bin/true.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

static void *exec_true(void *arg)
{
    (void)arg;
    char *argv[] = { "true", NULL };
    execv("/bin/true", argv);
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, exec_true, NULL);
    for (;;)
        pause();
}
