/*
 * pam_bench: an in-process PAM load driver for stepup's benchmarks.
 *
 *   pam_bench [-a ANSWER] [-o OFFSET] [-m MODULO] [-r RHOST] [-t TTY]
 *             (-n ROUNDS | -c CLIENTS -d SECONDS) SERVICE USER
 *
 * Each authentication is pam_start / pam_authenticate / pam_end, timed from
 * before pam_start to after pam_end (CLOCK_MONOTONIC). Prompts (echo on or
 * off) are answered with ANSWER; info and error messages are accepted.
 * A USER containing "%d" is formatted with a number: OFFSET + round for -n;
 * for -c, a pseudo-random number below MODULO (default 1), so concurrent
 * clients spread over MODULO users.
 *
 *   -n ROUNDS        one process, ROUNDS authentications in a row; prints
 *                    "us=N rc=R" per round.
 *   -c N -d SECONDS  N processes (fork), each authenticating in a loop until
 *                    SECONDS have passed; each client prints
 *                    "us=N rc=R" per authentication (whole lines, one write
 *                    per client at the end, so the output is not interleaved).
 *
 * Exit status 0 when every authentication returned PAM_SUCCESS.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *answer;

static int converse(int num_msg, const struct pam_message **msg,
                    struct pam_response **resp, void *appdata) {
    (void)appdata;
    struct pam_response *r = calloc((size_t)num_msg, sizeof *r);
    if (!r) return PAM_BUF_ERR;
    for (int i = 0; i < num_msg; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
            if (!answer) {
                for (int j = 0; j < i; j++) free(r[j].resp);
                free(r);
                return PAM_CONV_ERR;
            }
            r[i].resp = strdup(answer);
            break;
        case PAM_ERROR_MSG:
        case PAM_TEXT_INFO:
            break;
        default:
            for (int j = 0; j < i; j++) free(r[j].resp);
            free(r);
            return PAM_CONV_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000L;
}

static const char *tty, *rhost;

/* One authentication; returns the PAM result, stores the wall time. */
static int authenticate(const char *service, const char *user, long *us) {
    struct pam_conv conv = {converse, NULL};
    pam_handle_t *pamh = NULL;
    long t0 = now_us();
    int rc = pam_start(service, user, &conv, &pamh);
    if (rc == PAM_SUCCESS && tty) rc = pam_set_item(pamh, PAM_TTY, tty);
    if (rc == PAM_SUCCESS && rhost) rc = pam_set_item(pamh, PAM_RHOST, rhost);
    if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
    if (pamh) pam_end(pamh, rc);
    *us = now_us() - t0;
    return rc;
}

static void user_name(char *out, size_t size, const char *pattern, long n) {
    if (strstr(pattern, "%d"))
        snprintf(out, size, pattern, (int)n);
    else
        snprintf(out, size, "%s", pattern);
}

/* A client of the concurrent run: loop until the deadline, then print. */
static int client(const char *service, const char *pattern, long modulo,
                  long deadline, unsigned seed) {
    size_t cap = 4096, n = 0;
    long *lat = malloc(cap * sizeof *lat);
    int *res = malloc(cap * sizeof *res);
    int failed = 0;
    if (!lat || !res) return 1;
    while (now_us() < deadline) {
        char user[256];
        user_name(user, sizeof user, pattern, (long)(rand_r(&seed) % modulo));
        long us;
        int rc = authenticate(service, user, &us);
        if (rc != PAM_SUCCESS) failed = 1;
        if (n == cap) {
            cap *= 2;
            lat = realloc(lat, cap * sizeof *lat);
            res = realloc(res, cap * sizeof *res);
            if (!lat || !res) return 1;
        }
        lat[n] = us;
        res[n] = rc;
        n++;
    }
    /* One buffer, one write: lines of different clients never mix. */
    size_t bufcap = n * 32 + 1, len = 0;
    char *buf = malloc(bufcap);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, bufcap - len, "us=%ld rc=%d\n", lat[i], res[i]);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(1, buf + off, len - off);
        if (w <= 0) return 1;
        off += (size_t)w;
    }
    return failed;
}

int main(int argc, char **argv) {
    long rounds = 0, offset = 0, modulo = 1, clients = 0;
    double seconds = 0;
    int opt;
    while ((opt = getopt(argc, argv, "a:o:m:r:t:n:c:d:")) != -1) {
        switch (opt) {
        case 'a': answer = optarg; break;
        case 'o': offset = atol(optarg); break;
        case 'm': modulo = atol(optarg); break;
        case 'r': rhost = optarg; break;
        case 't': tty = optarg; break;
        case 'n': rounds = atol(optarg); break;
        case 'c': clients = atol(optarg); break;
        case 'd': seconds = atof(optarg); break;
        default: return 2;
        }
    }
    if (argc - optind != 2 || modulo < 1 || (rounds < 1) == (clients < 1) ||
        (clients > 0 && seconds <= 0)) {
        fprintf(stderr, "usage: pam_bench [-a ANSWER] [-o OFFSET] [-m MODULO] [-r RHOST] [-t TTY] (-n ROUNDS | -c CLIENTS -d SECONDS) SERVICE USER\n");
        return 2;
    }
    const char *service = argv[optind], *pattern = argv[optind + 1];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    if (rounds > 0) {
        int failed = 0;
        for (long i = 0; i < rounds; i++) {
            char user[256];
            long us;
            user_name(user, sizeof user, pattern, offset + i);
            int rc = authenticate(service, user, &us);
            if (rc != PAM_SUCCESS) failed = 1;
            printf("us=%ld rc=%d\n", us, rc);
        }
        fflush(stdout);
        return failed;
    }

    fflush(stdout);
    long deadline = now_us() + (long)(seconds * 1e6);
    pid_t *pids = calloc((size_t)clients, sizeof *pids);
    if (!pids) return 1;
    for (long i = 0; i < clients; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            for (long j = 0; j < i; j++) kill(pids[j], SIGTERM);
            return 1;
        }
        if (pid == 0) _exit(client(service, pattern, modulo, deadline, (unsigned)(getpid() * 2654435761u)));
        pids[i] = pid;
    }
    int failed = 0;
    for (long i = 0; i < clients; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    return failed;
}
