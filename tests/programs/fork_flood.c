// N children, each making K getppid calls on two threads and exiting 0: a flood of calls
// that fills the recorder's buffer while processes start and end.
// Usage: fork_flood N K
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int calls;

static void *spin(void *arg) {
    (void)arg;
    for (int i = 0; i < calls; i++)
        syscall(SYS_getppid);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int children = atoi(argv[1]);
    calls = atoi(argv[2]);
    for (int i = 0; i < children; i++) {
        if (fork() == 0) {
            pthread_t t;
            pthread_create(&t, NULL, spin, NULL);
            spin(NULL);
            pthread_join(t, NULL);
            syscall(SYS_exit_group, 0);
        }
    }
    while (wait(NULL) > 0)
        ;
    return 0;
}
