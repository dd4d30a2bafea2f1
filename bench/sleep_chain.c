/*
 * For bench/user-stacks: waits for SIGUSR1, then makes N short sleeps (1 us asked, about
 * 55 us taken with the default timer slack) from a chain of four named functions, and
 * prints how long they took. Built with -O2, as distributions build.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

__attribute__((noinline)) static void nap(void)
{
    struct timespec t = {0, 1000};
    nanosleep(&t, NULL);
}
__attribute__((noinline)) static void level3(void) { nap(); __asm__ volatile(""); }
__attribute__((noinline)) static void level2(void) { level3(); __asm__ volatile(""); }
__attribute__((noinline)) static void level1(void) { level2(); __asm__ volatile(""); }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    signal(SIGUSR1, on_usr1);
    while (!go)
        pause();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        level1();
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
