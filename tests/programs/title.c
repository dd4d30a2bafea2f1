/* Writes a title over its own arguments as PostgreSQL's ps_status.c does: the title at
 * argv[0], the rest of the arguments' space cleared to NULs. Prints "ready" once done,
 * then lives until its stdin closes, so that `record -p` can attach to it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    memset(argv[0], 0, (size_t)(end - argv[0]));
    strcpy(argv[0], "title: worker");
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
