// A thread that takes its own fd table and working directory (unshare), while the
// process's first thread keeps the old ones. argv[1]: a directory with a subdirectory `s`.
// Each fd's file is marked by an lseek to a known offset, for the test to look up.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
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

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 10;
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
