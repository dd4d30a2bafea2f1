// A child process made with clone(CLONE_FILES) ("files") or clone(CLONE_FS) ("fs") shares
// its parent's fd table, or working directory: the parent's dup2 or chdir changes what
// the child's calls name, and a recorder attached to the child alone sees no call that
// says so. argv[1]: a directory with subdirectories `a` and `b`, each with an `f.txt`.
// Prints the child's pid, then, until stdin closes, the parent moves every 30 ms (files:
// fd 9 between a/f.txt and b/f.txt with dup2; fs: its cwd between a and b) while the
// child marks what it names every 10 ms with an lseek to 4000. "apart" is "files" with the
// moves made by a thread of the parent, whose main thread then takes a table of its own
// (unshare): the thread's dup2 is the parent's call, yet changes the child's table.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char stack[65536];
static int files;
static volatile int stop;

static void pause_ms(long ms) {
    struct timespec t = {0, ms * 1000000};
    nanosleep(&t, 0);
}

static int child(void *unused) {
    (void)unused;
    for (;;) {
        if (files) {
            lseek(9, 4000, SEEK_SET);
        } else {
            int fd = open("f.txt", O_RDONLY);
            lseek(fd, 4000, SEEK_SET);
            close(fd);
        }
        pause_ms(10);
    }
    return 0;
}

/* Moves fd 9 between a/f.txt and b/f.txt every 30 ms (files), or the cwd between a and b. */
static int move(int n) {
    const char *to = n % 2 ? "a" : "b";
    if (files) {
        char name[8];
        snprintf(name, sizeof name, "%s/f.txt", to);
        int fd = open(name, O_RDONLY);
        dup2(fd, 9);
        close(fd);
        return 0;
    }
    return chdir(n % 2 ? "../a" : "../b");
}

static void *mover(void *unused) {
    (void)unused;
    for (int n = 0; !stop; n++) {
        move(n);
        pause_ms(30);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0) return 10;
    int apart = strcmp(argv[2], "apart") == 0;
    files = apart || strcmp(argv[2], "files") == 0;
    if (dup2(open("a/f.txt", O_RDONLY), 9) != 9) return 11;
    if (!files && chdir("a") != 0) return 11;
    int pid = clone(child, stack + sizeof stack, (files ? CLONE_FILES : CLONE_FS) | SIGCHLD, 0);
    if (pid < 0) return 12;
    printf("%d\n", pid);
    fflush(stdout);
    struct pollfd in = {0, POLLIN, 0};
    if (apart) {
        pthread_t t;
        if (pthread_create(&t, 0, mover, 0) != 0 || unshare(CLONE_FILES) != 0) return 14;
        while (poll(&in, 1, 30) == 0) {
        }
        stop = 1;
        pthread_join(t, 0);
    } else {
        for (int n = 0; poll(&in, 1, 30) == 0; n++) {
            if (move(n) != 0) return 13;
        }
    }
    kill(pid, SIGKILL);
    return 0;
}
