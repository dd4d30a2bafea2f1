/* sigreturn_eintr: a timer's signal interrupts a read of an empty pipe; the handler
 * (no SA_RESTART) returns through sigreturn (rt_sigreturn in a 64-bit build), which gives
 * back the read's EINTR. Exits 0 when the read failed so. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void handler(int sig) { (void)sig; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGALRM, &sa, 0);
    int p[2];
    char b;
    if (pipe(p) != 0)
        return 2;
    ualarm(50000, 0);
    return read(p[0], &b, 1) == -1 ? 0 : 1;
}
