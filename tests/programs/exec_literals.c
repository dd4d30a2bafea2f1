/* Forked children that exec with string literals: the first touch of those pages in a
 * child is the kernel's own read in execve, so a BPF program at the call's entry cannot
 * read them. Arguments: the directory holding an executable script `script.sh`, and a
 * program to run last as `thirty-two --bits` (the tests give a 32-bit one). Built 32-bit
 * too, its own calls are ia32 execve and execveat. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char script[4096];
static const char *last;

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
static void at_cwd(void) {
    char *const argv[] = {"true", "at-fdcwd", 0};
    char *const envp[] = {0};
    syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, envp, 0);
}
/* fexecve: the empty path is in a page never touched, so only the kernel reads it. */
static void at_fd_empty(void) {
    char *const argv[] = {"true", "at-fd-empty", 0};
    char *const envp[] = {0};
    const char *empty = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = open("/bin/true", O_RDONLY);
    if (empty != MAP_FAILED && fd >= 0)
        syscall(SYS_execveat, fd, empty, argv, envp, AT_EMPTY_PATH);
}
/* execveat relative to a directory's fd, the name in a memfd's page never touched here:
 * the kernel names the program `/dev/fd/N/true`. (A memfd, not a file in the directory
 * given: a test guest's shared directory may not map.) */
static int name_memfd = -1;
static void at_fd_relative(void) {
    char *const argv[] = {"true", "at-fd-relative", 0};
    char *const envp[] = {0};
    const char *name = mmap(0, 4096, PROT_READ, MAP_PRIVATE, name_memfd, 0);
    int dir = open("/bin", O_RDONLY | O_DIRECTORY);
    if (name != MAP_FAILED && dir >= 0)
        syscall(SYS_execveat, dir, name, argv, envp, 0);
}
static void the_last(void) { execl(last, "thirty-two", "--bits", (char *)0); }

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    last = argv[2];
    snprintf(script, sizeof script, "%s/script.sh", argv[1]);
    name_memfd = memfd_create("name", 0);
    if (name_memfd < 0 || write(name_memfd, "true", 5) != 5)
        return 1;
    child(literal_args);
    child(many_args);
    child(failed_then_run);
    child(a_script);
    child(at_cwd);
    child(at_fd_empty);
    child(at_fd_relative);
    child(the_last);
    return 0;
}
