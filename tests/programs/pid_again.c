/* pid_again: runs `sleep 0.3`, then `ls /nonexistent-1 /nonexistent-2` under the same pid
 * (clone3's set_tid, as root), as a host that wraps kernel.pid_max gives a pid again.
 * Prints the pid. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn_at(pid_t want, char *const argv[]) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    args.set_tid = (unsigned long)&want;
    args.set_tid_size = 1;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return r;
}

int main(void) {
    char *sleep[] = {"/bin/sleep", "0.3", 0};
    char *ls[] = {"/bin/ls", "/nonexistent-1", "/nonexistent-2", 0};
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    int max = 32768;
    if (f) {
        if (fscanf(f, "%d", &max) != 1)
            max = 32768;
        fclose(f);
    }
    /* The highest free pid: taken ones fail with EEXIST. */
    pid_t pid = -1;
    for (pid_t want = max - 1; want > max - 2000 && pid < 0; want--) {
        pid = spawn_at(want, sleep);
        if (pid < 0 && errno != EEXIST)
            return 2;
    }
    if (pid < 0)
        return 3;
    int status;
    waitpid(pid, &status, 0);
    if (spawn_at(pid, ls) != pid)
        return 4;
    waitpid(pid, &status, 0);
    printf("%d\n", pid);
    return 0;
}
