/*
 * Ground truth for the end-to-end tests: a known sequence of system calls across a
 * process, a forked child and a thread. Every call the tests count is made with syscall(2)
 * so that no libc wrapper adds or hides one. The counts here are repeated as constants in
 * tests/ground_truth.rs.
 *
 * It prints its pids so that the test can check attribution, and exits with status 7 so
 * that the test can check the recorder passes the status through.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long thread_tid;

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void *thread_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 55; i++)
        thread_tid = syscall(SYS_gettid);
    sleep_ms(50);
    return NULL;
}

int main(void)
{
    static char buf[4096];

    for (int i = 0; i < 1000; i++)
        syscall(SYS_getppid);
    for (int i = 0; i < 3; i++)
        syscall(SYS_chdir, "/nonexistent/tracepost");   /* ENOENT */
    for (int i = 0; i < 2; i++)
        syscall(SYS_mkdir, "/", 0755);                   /* EEXIST */

    int devnull = open("/dev/null", O_WRONLY);
    for (int i = 0; i < 5; i++)
        syscall(SYS_write, devnull, buf, 4096);
    int devzero = open("/dev/zero", O_RDONLY);
    for (int i = 0; i < 4; i++)
        syscall(SYS_read, devzero, buf, 1000);

    sleep_ms(100);
    sleep_ms(100);

    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 77; i++)
            syscall(SYS_getuid);
        syscall(SYS_exit_group, 3);
    }

    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);

    int status = 0;
    waitpid(child, &status, 0);
    printf("parent=%d child=%d thread=%ld child_status=%d\n", (int)getpid(), (int)child,
           thread_tid, WEXITSTATUS(status));
    fflush(stdout);
    return 7;
}
