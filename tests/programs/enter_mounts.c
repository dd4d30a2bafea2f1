// setns into the caller's own mount namespace, which moves its cwd and root to the
// namespace's root, as `nsenter -m` does; then a relative open of etc/hostname, which is
// /etc/hostname now. argv[1]: a directory to start in; argv[2]: "given" names the kind
// (CLONE_NEWNS), "fd" leaves it to the fd (0).
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0) return 10;
    int ns = open("/proc/self/ns/mnt", O_RDONLY);
    if (setns(ns, strcmp(argv[2], "given") == 0 ? CLONE_NEWNS : 0) != 0) return 11;
    int fd = open("etc/hostname", O_RDONLY);
    char buf[256];
    if (fd < 0 || read(fd, buf, sizeof buf) < 0) return 12;
    return 0;
}
