/*
 * Overload with several processes: forks K workers; each makes exactly N getppid calls and
 * N/100 close(-1) calls (which fail with EBADF), then exits. Prints each worker's pid, so
 * the test knows, independently of the recorder, what each process issued.
 *
 *   busy_workers K N
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int k = argc > 1 ? atoi(argv[1]) : 3;
    long n = argc > 2 ? atol(argv[2]) : 100000;
    for (int w = 0; w < k; w++) {
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            for (long i = 0; i < n; i++)
                syscall(SYS_getppid);
            for (long i = 0; i < n / 100; i++)
                syscall(SYS_close, -1);
            _exit(0);
        }
        printf("worker=%d\n", pid);
    }
    fflush(stdout);
    int status, failed = 0;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
