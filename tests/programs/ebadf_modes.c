/* EBADF that is the fd's mode, not a closed fd: a pread on a file opened write-only, a
 * write on one opened read-only, an fsync on an O_PATH fd. Each is followed by a call that
 * succeeds on the same fd, which must still be named. Then a read on the read-only fd
 * after its close: EBADF, and no name. Last, a write and a read on the stdin it was given,
 * a file opened read-only before the recorder began. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    char buf[4];
    struct stat st;
    int w = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int r = open("/etc/hostname", O_RDONLY);
    int p = open("/etc", O_PATH);
    if (w < 0 || r < 0 || p < 0)
        return 3;
    if (pread(w, buf, sizeof buf, 0) != -1 || write(r, "x", 1) != -1 || fsync(p) != -1)
        return 4;
    if (write(w, "ok\n", 3) != 3 || read(r, buf, 1) != 1 || fstat(p, &st) != 0)
        return 5;
    close(r);
    if (read(r, buf, 1) != -1)
        return 6;
    /* The stdin it was given, read-only, which the recorder knows from /proc. */
    if (write(0, "x", 1) != -1 || read(0, buf, 1) != 1)
        return 7;
    return 0;
}
