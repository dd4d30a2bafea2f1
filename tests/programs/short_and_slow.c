/*
 * Calls of known count and known length, for --min-duration: 1000 getppid and 20 failing
 * close(-1) (each far below a millisecond), then 3 sleeps of 20 ms. Prints its pid.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    printf("pid=%d\n", getpid());
    fflush(stdout);
    for (int i = 0; i < 1000; i++)
        syscall(SYS_getppid);
    for (int i = 0; i < 20; i++)
        syscall(SYS_close, -1);
    struct timespec t = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 3; i++)
        nanosleep(&t, NULL);
    return 0;
}
