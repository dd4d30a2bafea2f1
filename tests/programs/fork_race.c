/* A thread loops dup2 onto fd 50, between two files, while the main thread forks: the
 * kernel copies the fd table at some instant of each fork, and which file fd 50 holds in
 * the child is the toggler's race. Each child reads fd 50 and fd 60 (a file no thread
 * touches) with pread64(fd, NULL, 0, 0), then asks /proc which file each is and names it
 * in an access(2) call, the oracle. Usage: fork_race DIR FORKS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int fa, fb;
static volatile int stop;

static void *toggler(void *arg) {
    (void)arg;
    while (!stop) {
        dup2(fb, 50);
        dup2(fa, 50);
    }
    return NULL;
}

static void oracle(int fd) {
    char link[64], name[4096];
    syscall(SYS_pread64, fd, NULL, 0, 0);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, name, sizeof name - 1);
    if (n > 0) {
        name[n] = 0;
        access(name, F_OK);
    }
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/A", argv[1]);
    snprintf(b, sizeof b, "%s/B", argv[1]);
    fa = open(a, O_RDONLY | O_CREAT, 0600);
    fb = open(b, O_RDONLY | O_CREAT, 0600);
    if (fa < 0 || fb < 0 || dup2(fa, 50) < 0 || dup2(fb, 60) < 0)
        return 3;
    /* Memory to copy makes each fork's window wider. */
    size_t size = 64 << 20;
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 4;
    for (size_t i = 0; i < size; i += 4096)
        m[i] = 1;
    pthread_t t;
    pthread_create(&t, NULL, toggler, NULL);
    for (int i = 0; i < atoi(argv[2]); i++) {
        pid_t p = fork();
        if (p == 0) {
            oracle(50);
            oracle(60);
            _exit(0);
        }
        waitpid(p, NULL, 0);
    }
    stop = 1;
    pthread_join(t, NULL);
    return 0;
}
