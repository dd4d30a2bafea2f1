/*
 * Two threads: one makes COUNT sleeps of MS milliseconds (clock_nanosleep, as glibc calls it) while the other calls getppid as
 * fast as it can until the sleeper is done. The sleeps enter long before calls that return
 * first, which is what the recorder's reorder window is for. Prints the getppid count.
 *   sleeper_and_spinner MS COUNT
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
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
    while (!atomic_load(&done)) {
        syscall(SYS_getppid);
        spins++;
    }
    pthread_join(t, NULL);
    printf("getppid=%ld\n", spins);
    return 0;
}
