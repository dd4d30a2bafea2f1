// A thread made with clone(CLONE_THREAD) but without CLONE_FILES ("files") or without
// CLONE_FS ("fs"): it has an fd table, or a working directory, of its own, and no call
// says so. argv[1]: a directory with a subdirectory `s`; argv[2]: "files", "fs", or "stay":
// as "files", then the thread marks its own fd again every 20 ms until stdin closes, for
// a recorder that attaches meanwhile.
// Each fd's file is marked by an lseek to a known offset, for the test to look up.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char stack[65536];
static volatile int done;
static int fd;
static volatile int stay;

// Raw system calls only: the thread has no TLS of its own for libc's errno.
static int apart_files(void *unused) {
    (void)unused;
    syscall(SYS_close, fd);
    long other = syscall(SYS_openat, AT_FDCWD, "other.txt", O_CREAT | O_RDWR, 0644);
    // The same number, in this thread's table only.
    done = other == fd ? 1 : 2;
    while (stay) {
        syscall(SYS_lseek, other, 4000, SEEK_SET); // other.txt
        struct timespec pause = {0, 20000000};
        syscall(SYS_nanosleep, &pause, 0);
    }
    return 0;
}

static int apart_fs(void *unused) {
    (void)unused;
    done = syscall(SYS_chdir, "s") == 0 ? 1 : 2;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0) return 10;
    stay = strcmp(argv[2], "stay") == 0;
    int files = stay || strcmp(argv[2], "files") == 0;
    fd = open("mine.txt", O_CREAT | O_RDWR, 0644);
    int flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | (files ? CLONE_FS : CLONE_FILES);
    if (clone(files ? apart_files : apart_fs, stack + sizeof stack, flags, 0) < 0) return 11;
    while (!done) usleep(1000);
    if (done != 1) return 12;
    if (stay) {
        char c;
        printf("ready\n");
        fflush(stdout);
        while (read(0, &c, 1) > 0) {
        }
        return 0;
    }
    if (files) {
        lseek(fd, 1000, SEEK_SET); // mine.txt: other.txt is the other thread's
    } else {
        int late = open("late.txt", O_CREAT | O_RDWR, 0644); // here, not in s
        lseek(late, 2000, SEEK_SET);
    }
    return 0;
}
