/*
 * dl_load: how long dlopen + dlclose of a PAM module takes, in a process
 * that already has libpam loaded (as every PAM application has).
 *
 *   dl_load MODULE ROUNDS   → "us=N" per round
 *
 * A module linked -z nodelete (pam_stepup.so) or one that registered
 * thread-local destructors stays mapped after dlclose, so only the first
 * round in a process is a full load (mapping, relocation, its own
 * dependencies): bench/startup.sh runs one round per process, the cost a
 * PAM application pays once per process.
 */
#include <dlfcn.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dl_load MODULE ROUNDS\n");
        return 2;
    }
    /* Keep libpam linked and loaded, as in a PAM application. */
    if (pam_strerror(NULL, PAM_SUCCESS) == NULL) return 1;
    int rounds = atoi(argv[2]);
    for (int i = 0; i < rounds; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        dlclose(h);
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("us=%ld\n", (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000L);
    }
    return 0;
}
