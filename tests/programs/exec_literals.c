/* Forked children that exec with string literals: the first touch of those pages in a
 * child is the kernel's own read in execve, so a BPF program at the call's entry cannot
 * read them. Argument: the directory holding an executable script `script.sh`. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static char script[4096];

static void child(void (*run)(void)) {
    pid_t p = fork();
    if (p == 0) {
        run();
        _exit(127);
    }
    waitpid(p, 0, 0);
}

static void literal_args(void) { execl("/bin/true", "true", "--literal-arg", (char *)0); }
static void many_args(void) {
    execl("/bin/true", "true", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
          "13", "14", "15", "16", "17", "18", (char *)0);
}
static void failed_then_run(void) {
    execl("/nonexistent-exec-literal", "x", (char *)0);
    execl("/bin/true", "true", "after-failure", (char *)0);
}
static void a_script(void) { execl(script, "script.sh", "a b", "", "c", (char *)0); }

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    snprintf(script, sizeof script, "%s/script.sh", argv[1]);
    child(literal_args);
    child(many_args);
    child(failed_then_run);
    child(a_script);
    return 0;
}
