/*
 * mv FROM TO, as one rename(2): built 32-bit, a 32-bit program taking a name away from
 * a file another (64-bit) process holds open.
 */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    return rename(argv[1], argv[2]) == 0 ? 0 : 1;
}
