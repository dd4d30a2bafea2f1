/* N getppid calls, started by SIGUSR1: `record -p` attaches first, so that its CPU time
 * counts the recording of these calls alone, start-up included. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t go;
static void h(int s){(void)s;go=1;}
int main(int argc, char **argv){
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    signal(SIGUSR1,h);
    while(!go) pause();
    struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
    for (long i=0;i<n;i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC,&b);
    double ns=(b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec);
    printf("calls=%ld ns_per_call=%.1f\n",n,ns/n); return 0;}
