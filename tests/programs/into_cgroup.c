/* into_cgroup DIR: clone3 with CLONE_INTO_CGROUP puts a child straight into the cgroup DIR,
 * as systemd and container runtimes start a service. The child calls getppid 20 times, the
 * parent getpid 20 times, 20 ms apart; the parent prints the child's pid. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int cgroup = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (cgroup < 0)
        return 1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = cgroup;
    long child = syscall(SYS_clone3, &args, sizeof args);
    if (child < 0)
        return 1;
    struct timespec pause = {0, 20000000};
    for (int i = 0; i < 20; i++) {
        if (child == 0)
            getppid();
        else
            getpid();
        nanosleep(&pause, 0);
    }
    if (child == 0)
        _exit(0);
    waitpid(child, 0, 0);
    printf("%ld\n", child);
    return 0;
}
