/* slow_marks N MS: opens /etc/hostname, makes N getppid calls MS milliseconds apart, then
 * reads the file: a service that runs for a while after it starts. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int n = atoi(argv[1]), ms = atoi(argv[2]);
    int fd = open("/etc/hostname", O_RDONLY);
    for (int i = 0; i < n; i++) {
        getppid();
        usleep(ms * 1000);
    }
    char b[8];
    return read(fd, b, sizeof b) < 0;
}
