/*
 * sleeps_among_calls: one thread sleeps 10 ms ten times, 250 ms apart, while another makes
 * 100 getppid calls every millisecond. The busy thread's calls keep the recorder's writer
 * writing rows all along, so a slow call's row is written while its user stack may still
 * be unwinding (tests/tests/why_slow.rs counts those that come too late).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int done;

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void *busy(void *arg)
{
    (void)arg;
    while (!done) {
        for (int i = 0; i < 100; i++)
            syscall(SYS_getppid);
        sleep_ms(1);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, busy, NULL);
    for (int i = 0; i < 10; i++) {
        sleep_ms(10);
        for (int j = 0; j < 250; j++)
            sleep_ms(1);
    }
    done = 1;
    pthread_join(t, NULL);
    return 0;
}
