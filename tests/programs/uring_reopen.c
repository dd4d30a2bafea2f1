/*
 * Closes and opens a file through io_uring, which makes no close or openat syscall:
 *   opens DIR/x (a syscall), closes it with IORING_OP_CLOSE, opens DIR/y with
 *   IORING_OP_OPENAT (the kernel gives it the lowest free fd, x's), then marks that fd
 *   with lseek(fd, 1001). Its file is y, which a table that follows syscalls alone names x.
 * Usage: uring_reopen DIR [registered]. Prints "fd=N".
 * With "registered", the ring is registered with the kernel (IORING_REGISTER_RING_FDS) and
 * its fd closed, as a ring can be used; the program prints "ready", waits for DIR/go to
 * appear (a `record -p` attaching meanwhile sees no ring among its fds), then goes on.
 */
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int ring;
static unsigned enter_flags;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

/* Submits one entry and waits for its completion; returns its result. */
static int run(const struct io_uring_sqe *sqe)
{
    unsigned tail = *sq_tail, i = tail & *sq_mask;
    sqes[i] = *sqe;
    sq_array[i] = i;
    __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS | enter_flags, NULL, 0) <
        0) {
        perror("io_uring_enter");
        exit(2);
    }
    unsigned head = *cq_head;
    int res = cqes[head & *cq_mask].res;
    __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

int main(int argc, char **argv)
{
    char x[4096], y[4096];
    if (argc != 2 && argc != 3)
        return 2;
    snprintf(x, sizeof x, "%s/x", argv[1]);
    snprintf(y, sizeof y, "%s/y", argv[1]);
    close(open(y, O_CREAT | O_WRONLY, 0600));

    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    ring = syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0) {
        perror("io_uring_setup");
        return 3;
    }
    int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_POPULATE;
    char *sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), prot, flags, ring,
                    IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), prot,
                    flags, ring, IORING_OFF_CQ_RING);
    sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), prot, flags, ring,
                IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
        perror("mmap");
        return 3;
    }
    sq_tail = (unsigned *)(sq + p.sq_off.tail);
    sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    sq_array = (unsigned *)(sq + p.sq_off.array);
    cq_head = (unsigned *)(cq + p.cq_off.head);
    cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

    if (argc == 3) {
        struct io_uring_rsrc_update reg = {.offset = 0, .data = (unsigned long)ring};
        if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_RING_FDS, &reg, 1) != 1) {
            perror("io_uring_register");
            return 3;
        }
        close(ring);
        ring = 0; /* the registered ring's index */
        enter_flags = IORING_ENTER_REGISTERED_RING;
        char go[4096];
        snprintf(go, sizeof go, "%s/go", argv[1]);
        printf("ready\n");
        fflush(stdout);
        while (access(go, F_OK) != 0)
            usleep(10000);
    }
    int fd = open(x, O_CREAT | O_WRONLY, 0600);
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_CLOSE;
    sqe.fd = fd;
    if (run(&sqe) != 0)
        return 4;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_OPENAT;
    sqe.fd = AT_FDCWD;
    sqe.addr = (unsigned long)y;
    sqe.open_flags = O_RDONLY;
    int again = run(&sqe);
    if (again != fd)
        return 5;
    lseek(fd, 1001, SEEK_SET);
    printf("fd=%d\n", fd);
    return 0;
}
