/*
 * Losses in many groups at once: forks K children, which wait until all are forked, then
 * each makes N calls of each of eight cheap syscalls (four that fail with EBADF), then
 * exits. Every child is alive while every other one calls, so the kernel's groups of
 * unsent calls (pid, syscall, errno, latency) are K * 8 or more at once.
 *
 *   many_groups K N
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int k = argc > 1 ? atoi(argv[1]) : 600;
    long n = argc > 2 ? atol(argv[2]) : 20;
    int go[2];
    if (pipe(go) != 0)
        return 2;
    for (int c = 0; c < k; c++) {
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            char byte;
            syscall(SYS_close, go[1]);
            /* Returns 0 when the parent closes its end: every child is forked by then. */
            syscall(SYS_read, go[0], &byte, 1);
            for (long i = 0; i < n; i++) {
                syscall(SYS_getppid);
                syscall(SYS_getpid);
                syscall(SYS_getuid);
                syscall(SYS_getgid);
                syscall(SYS_close, -1);
                syscall(SYS_dup, -1);
                syscall(SYS_fsync, -1);
                syscall(SYS_lseek, -1, 0, 0);
            }
            syscall(SYS_exit_group, 0);
        }
    }
    syscall(SYS_close, go[1]);
    int status, failed = 0;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
