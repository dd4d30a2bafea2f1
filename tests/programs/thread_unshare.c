// A thread that takes its own fd table and working directory (unshare), while the
// process's first thread keeps the old ones; then the first thread of another process does
// the same while a second thread waits; then a child made with CLONE_FS changes the cwd it
// shares with its maker. argv[1]: a directory with subdirectories `s` and `t`.
// Each fd's file is marked by an lseek to a known offset, for the test to look up.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int shared_fd;

static void *other(void *dir) {
    (void)dir;
    if (unshare(CLONE_FILES | CLONE_FS) != 0) return (void *)1;
    close(shared_fd);
    int e = open("E.txt", O_CREAT | O_RDWR, 0644); // takes the same number, here only
    if (e != shared_fd) return (void *)2;
    lseek(e, 3000, SEEK_SET);
    if (chdir("s") != 0) return (void *)3;
    return 0;
}

static int waiting_fd;
static volatile int go;

static void *waiter(void *unused) {
    (void)unused;
    while (!go) usleep(1000);
    lseek(waiting_fd, 4000, SEEK_SET); // still F.txt in this thread
    return 0;
}

static char stack[65536];

static int in_t(void *unused) {
    (void)unused;
    return chdir("t") != 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 10;
    if (argc > 2) {
        // The second run: the first thread unshares while another thread shares the table.
        waiting_fd = open("F.txt", O_CREAT | O_RDWR, 0644);
        pthread_t w;
        pthread_create(&w, 0, waiter, 0);
        if (unshare(CLONE_FILES) != 0) return 12;
        close(waiting_fd);
        if (open("G.txt", O_CREAT | O_RDWR, 0644) != waiting_fd) return 13;
        go = 1;
        pthread_join(w, 0);
        // A CLONE_FS child moves the cwd this process shares with it.
        pid_t c = clone(in_t, stack + sizeof stack, CLONE_FS | SIGCHLD, 0);
        waitpid(c, 0, 0);
        int q = open("q.txt", O_CREAT | O_RDWR, 0644); // in t, as the child left it
        lseek(q, 5000, SEEK_SET);
        return 0;
    }
    shared_fd = open("B.txt", O_CREAT | O_RDWR, 0644);
    pthread_t t;
    void *failed;
    pthread_create(&t, 0, other, argv[1]);
    pthread_join(t, &failed);
    if (failed) return 11;
    lseek(shared_fd, 1000, SEEK_SET); // still B.txt in this thread
    int p = open("p3.txt", O_CREAT | O_RDWR, 0644); // in argv[1], not in s
    lseek(p, 2000, SEEK_SET);
    return 0;
}
