/* The check macro the user-mode test programs share: prints "ok NAME" or
 * "FAIL NAME" (with errno) and counts failures in `failures`. */
#ifndef TURING_USER_CHECK_H
#define TURING_USER_CHECK_H

#include <errno.h>
#include <stdio.h>

static int failures;

#define CHECK(name, cond)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            printf("ok %s\n", name);                                       \
        } else {                                                           \
            printf("FAIL %s (errno %d)\n", name, errno);                   \
            failures++;                                                    \
        }                                                                  \
    } while (0)

#endif
