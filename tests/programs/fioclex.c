/* Close-on-exec set and cleared with ioctl (FIOCLEX, FIONCLEX), then an exec. Stage one
 * opens /etc/hostname (kept across exec, then marked FIOCLEX) and /etc/passwd (O_CLOEXEC,
 * then FIONCLEX), and runs itself with both numbers; stage two asks F_GETFD of each: the
 * first is closed (EBADF), the second is open. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc == 3) {
        fcntl(atoi(argv[1]), F_GETFD);
        fcntl(atoi(argv[2]), F_GETFD);
        return 0;
    }
    int a = open("/etc/hostname", O_RDONLY);
    int b = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (a < 0 || b < 0 || ioctl(a, FIOCLEX) != 0 || ioctl(b, FIONCLEX) != 0)
        return 2;
    char fa[16], fb[16];
    snprintf(fa, sizeof fa, "%d", a);
    snprintf(fb, sizeof fb, "%d", b);
    execl("/proc/self/exe", argv[0], fa, fb, (char *)0);
    return 3;
}
