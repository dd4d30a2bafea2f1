/*
 * The tight-loop workload for overhead figures: N getppid calls, then prints the mean
 * cost per call measured inside the process (CLOCK_MONOTONIC around the loop), so the
 * figure excludes process start-up and the recorder's own start and stop.
 *
 *   getppid_loop [N]    (default 2000000)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("calls=%ld ns_per_call=%.1f\n", n, ns / n);
    return 0;
}
