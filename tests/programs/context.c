/*
 * Ground truth for the context columns: a file it creates and writes, a pipe, a TCP
 * connection to itself over 127.0.0.1, and a failed connect to a unix socket path. Prints
 * what the test must find, as key=value.
 *
 *   context DIR
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[512];
    snprintf(path, sizeof path, "%s/data.txt", argv[1]);
    if (chdir(argv[1]) != 0)
        return 3;

    /* A file, opened by a relative path: fd_path must come out absolute. */
    int file = openat(AT_FDCWD, "data.txt", O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    if (write(file, "hello", 5) != 5)
        return 4;
    close(file);

    /* A pipe. */
    int p[2];
    char buf[64];
    if (pipe(p) != 0 || write(p[1], "abc", 3) != 3 || read(p[0], buf, sizeof buf) != 3)
        return 5;

    /* TCP to ourselves. */
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        return 6;
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, (struct sockaddr *)&addr, sizeof addr) != 0)
        return 7;
    struct sockaddr_in peer;
    len = sizeof peer;
    int server = accept(listener, (struct sockaddr *)&peer, &len);
    struct sockaddr_in local;
    socklen_t llen = sizeof local;
    getsockname(client, (struct sockaddr *)&local, &llen);
    if (server < 0 || send(client, "ping", 4, 0) != 4 || recv(server, buf, sizeof buf, 0) != 4)
        return 8;

    /* A unix socket path that does not exist. */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s/nope.sock", argv[1]);
    connect(u, (struct sockaddr *)&un, sizeof un);

    printf("pid=%d file_fd=%d path=%s pipe_r=%d pipe_w=%d port=%d client=%d server=%d "
           "client_port=%d unix=%s\n",
           getpid(), file, path, p[0], p[1], ntohs(addr.sin_port), client, server,
           ntohs(local.sin_port), un.sun_path);
    return 0;
}
