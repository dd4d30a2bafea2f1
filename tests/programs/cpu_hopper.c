/*
 * Opens a file on one CPU and writes to it from another, COUNT times, each file in turn
 * under the same fd number. Each CPU sends its records through its own staging area, so
 * a recorder that replayed one CPU's calls before the other's would name the previous
 * file for a write. The write of file I writes I + 1 bytes, so that a query can pair them.
 *
 *   cpu_hopper DIR COUNT      prints cpus=N pid=P
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int count = atoi(argv[2]);
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return 3;
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[n++] = c;
    printf("cpus=%d pid=%d\n", n, getpid());
    fflush(stdout);
    if (n < 2)
        return 0;
    static char buf[4096];
    char path[4096];
    for (int i = 0; i < count; i++) {
        if (pin(cpus[i % 2]) != 0)
            return 4;
        snprintf(path, sizeof path, "%s/hop-%d", argv[1], i);
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0)
            return 5;
        if (pin(cpus[(i + 1) % 2]) != 0)
            return 6;
        if (write(fd, buf, (size_t)(i % 4000) + 1) < 0)
            return 7;
        close(fd);
        unlink(path);
    }
    return 0;
}
