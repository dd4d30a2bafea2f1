/*
 * For `record -p`: opens a file, says so, waits, then writes to it (an fd opened before
 * the recorder attached), and exits.
 *
 *   writes_later FILE
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0)
        return 3;
    printf("pid=%d fd=%d\n", getpid(), fd);
    fflush(stdout);
    sleep(2);
    for (int i = 0; i < 5; i++) {
        if (write(fd, "x", 1) != 1)
            return 4;
        usleep(20000);
    }
    return 0;
}
