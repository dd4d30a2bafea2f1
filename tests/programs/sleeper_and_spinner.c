/*
 * Two threads: one makes COUNT sleeps of MS milliseconds (clock_nanosleep, as glibc calls it) while the other calls getppid as
 * fast as it can until the sleeper is done. The sleeps enter long before calls that return
 * first, which is what the recorder's reorder window is for. Prints the getppid count.
 *   sleeper_and_spinner MS COUNT
 *
 * The spinner calls at most once every 2 us (500K calls/s). The recorder's window holds
 * 30 ms of calls up to 64K of them; a spinner free to run at 3M calls/s, as on a fast
 * host, fills that in 21 ms, and a sleep that a busy CPU woke late then rightly went to
 * the next file, which is not what these tests are about.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

static atomic_int done;
static long ms, count;

static void *sleeper(void *arg)
{
    (void)arg;
    struct timespec t = {ms / 1000, (ms % 1000) * 1000 * 1000};
    for (long i = 0; i < count; i++)
        nanosleep(&t, NULL);
    atomic_store(&done, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    ms = atol(argv[1]);
    count = atol(argv[2]);
    pthread_t t;
    if (pthread_create(&t, NULL, sleeper, NULL) != 0)
        return 1;
    long spins = 0;
    uint64_t next = 0;
    while (!atomic_load(&done)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now); /* the vDSO: no system call */
        uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        if (ns < next)
            continue;
        next = ns + 2000;
        syscall(SYS_getppid);
        spins++;
    }
    pthread_join(t, NULL);
    printf("getppid=%ld\n", spins);
    return 0;
}
