// A process renames itself to "zzz" (prctl), then forks a child that makes 1000 getppid
// calls and exits 5; and a second child that renames itself "yyy" and forks a grandchild
// that makes 700 getppid calls and exits 6. Under `record --comm zzz` the first child,
// born with the name zzz, is recorded from its first call; the grandchild, born yyy, is not.
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    prctl(PR_SET_NAME, "zzz");
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 1000; i++)
            syscall(SYS_getppid);
        _exit(5);
    }
    waitpid(child, NULL, 0);
    child = fork();
    if (child == 0) {
        prctl(PR_SET_NAME, "yyy");
        pid_t grandchild = fork();
        if (grandchild == 0) {
            for (int i = 0; i < 700; i++)
                syscall(SYS_getppid);
            _exit(6);
        }
        waitpid(grandchild, NULL, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    return 0;
}
