/* A slower disk, for measuring what tally's waits for the disk cost (README, Benchmarks):
 * every fsync and fdatasync of the program it is loaded into first sleeps FSYNC_DELAY_US
 * microseconds (a hard disk, or Windows flushing a drive's cache, takes milliseconds where
 * this machine's disk takes ~0.1 ms). Not used by tally itself or its tests.
 *
 *   gcc -O2 -shared -fPIC -o target/slow_fsync.so scripts/slow_fsync.c -ldl
 *   LD_PRELOAD=$PWD/target/slow_fsync.so FSYNC_DELAY_US=4000 target/release/tally …
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void wait_for_the_disk(void) {
    const char *s = getenv("FSYNC_DELAY_US");
    long us = s ? atol(s) : 0;
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    if (us > 0)
        nanosleep(&t, 0);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_for_the_disk();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_for_the_disk();
    return real(fd);
}
