/*
 * Calls whose time goes to known places, for `record --sched`:
 *   1. the main thread blocks in read() on a pipe until a thread named "pipe-writer"
 *      writes to it 40 ms later;
 *   2. it then sleeps 20 ms in nanosleep(), three named functions deep, woken by a timer;
 *   3. pinned to one CPU beside a thread that spins there, it calls sched_yield() 20 times:
 *      those calls wait for the CPU, and never block.
 * Prints "reader=TID writer=TID" so the test knows the threads. Built as distributions
 * build programs: -O2, no special flags.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static volatile int spinning = 1;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *writer(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "pipe-writer");
    printf("writer=%d\n", gettid());
    fflush(stdout);
    sleep_ms(40);
    if (write(fds[1], "x", 1) != 1)
        _exit(3);
    return NULL;
}

static void pin_to_cpu0(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *spinner(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "spinner");
    pin_to_cpu0();
    while (spinning)
        ;
    return NULL;
}

/* Not inlined, so that a stack shows each of them. */
__attribute__((noinline)) static void deep_sleep(void) { sleep_ms(20); }
__attribute__((noinline)) static void middle_sleep(void) { deep_sleep(); __asm__ volatile(""); }
__attribute__((noinline)) static void outer_sleep(void) { middle_sleep(); __asm__ volatile(""); }

int main(void)
{
    char c;
    pthread_t w, s;
    if (pipe(fds) != 0)
        return 2;
    printf("reader=%d\n", gettid());
    fflush(stdout);
    pthread_create(&w, NULL, writer, NULL);
    if (read(fds[0], &c, 1) != 1)
        return 4;
    pthread_join(w, NULL);

    outer_sleep();

    pin_to_cpu0();
    pthread_create(&s, NULL, spinner, NULL);
    sleep_ms(10); /* the spinner is on the CPU by now */
    for (int i = 0; i < 20; i++)
        sched_yield();
    spinning = 0;
    pthread_join(s, NULL);
    return 0;
}
