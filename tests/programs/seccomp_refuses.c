/* seccomp_refuses: what a container's or a service's seccomp profile does to a program. A
 * filter refuses getuid with EPERM, answers getppid with 0 without running it, and traps
 * getgid (SIGSYS, handled: the call returns its own number, as the kernel leaves it); then
 * the program calls getuid 3 times, getppid 5 times and getgid 2 times, and prints the sums
 * of what they returned and how many traps it took. Built with -m32, the same with i386's
 * numbers. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __i386__
#define ARCH AUDIT_ARCH_I386
#else
#define ARCH AUDIT_ARCH_X86_64
#endif

static volatile sig_atomic_t traps;

static void trapped(int sig) {
    (void)sig;
    traps++;
}

int main(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getuid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getgid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    signal(SIGSYS, trapped);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program))
        return 2;
    long uid = 0, ppid = 0, gid = 0;
    for (int i = 0; i < 3; i++)
        uid += syscall(__NR_getuid);
    for (int i = 0; i < 5; i++)
        ppid += syscall(__NR_getppid);
    for (int i = 0; i < 2; i++)
        gid += syscall(__NR_getgid);
    printf("%ld %ld %ld %d\n", uid, ppid, gid, (int)traps);
    return 0;
}
