/*
 * A paced load for throughput figures: P processes together issue RATE getppid calls per
 * second for SECONDS, in steps of a millisecond, and each prints how many it issued (so
 * the issued count is known independently of the recorder), and whether it kept pace.
 *
 *   paced_getppid P RATE SECONDS
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: paced_getppid P RATE SECONDS\n");
        return 2;
    }
    int procs = atoi(argv[1]);
    double rate = atof(argv[2]) / procs;
    double seconds = atof(argv[3]);
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            double start = now(), t;
            long issued = 0;
            while ((t = now() - start) < seconds) {
                long due = (long)(rate * t);
                while (issued < due) {
                    syscall(SYS_getppid);
                    issued++;
                }
                struct timespec ms = {0, 200 * 1000};
                nanosleep(&ms, NULL);
            }
            long target = (long)(rate * seconds);
            printf("pid=%d issued=%ld achieved_rate=%.0f kept_pace=%s\n", getpid(), issued,
                   issued / (now() - start), issued + rate * 0.01 >= target ? "yes" : "no");
            fflush(stdout);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    return 0;
}
