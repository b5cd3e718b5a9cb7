/*
 * pam_drive: an in-process PAM driver for stepup's tests and benchmarks.
 *
 *   pam_drive SERVICE USER [-a ANSWER]... [-t TTY] [-r RHOST] [-u RUSER]
 *             [-n REPEAT] [-c] [-T]
 *
 * Runs pam_start / pam_authenticate / pam_end REPEAT times (default 1).
 * Prompts (echo on or off) are answered with the -a values in order, afresh
 * for each round; with none left the conversation fails (PAM_CONV_ERR).
 * Info and error messages are printed as "info: ..." / "error: ...".
 * Prints "result=N NAME" per round. -c prints the thread and fd counts of
 * this process before the first round and after the last; -T prints each
 * round's wall time in microseconds ("us=N"). A USER containing "%d" is
 * formatted with the round number (0, 1, …): one user per round.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWERS 32

struct script {
    const char *answers[MAX_ANSWERS];
    int count;
    int next;
};

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int converse(int num_msg, const struct pam_message **msg,
                    struct pam_response **resp, void *appdata) {
    struct script *s = appdata;
    struct pam_response *r = calloc((size_t)num_msg, sizeof *r);
    if (!r) return PAM_BUF_ERR;
    for (int i = 0; i < num_msg; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
            printf("prompt: %s\n", msg[i]->msg);
            if (s->next >= s->count) {
                for (int j = 0; j < i; j++) free(r[j].resp);
                free(r);
                return PAM_CONV_ERR;
            }
            r[i].resp = strdup(s->answers[s->next++]);
            break;
        case PAM_ERROR_MSG:
            printf("error: %s\n", msg[i]->msg);
            break;
        case PAM_TEXT_INFO:
            printf("info: %s\n", msg[i]->msg);
            break;
        default:
            for (int j = 0; j < i; j++) free(r[j].resp);
            free(r);
            return PAM_CONV_ERR;
        }
    }
    fflush(stdout);
    *resp = r;
    return PAM_SUCCESS;
}

int main(int argc, char **argv) {
    struct script s = {0};
    const char *tty = NULL, *rhost = NULL, *ruser = NULL;
    int repeat = 1, counts = 0, timings = 0, opt, last = PAM_SYSTEM_ERR;
    while ((opt = getopt(argc, argv, "a:t:r:u:n:cT")) != -1) {
        switch (opt) {
        case 'a':
            if (s.count == MAX_ANSWERS) return 2;
            s.answers[s.count++] = optarg;
            break;
        case 't': tty = optarg; break;
        case 'r': rhost = optarg; break;
        case 'u': ruser = optarg; break;
        case 'n': repeat = atoi(optarg); break;
        case 'c': counts = 1; break;
        case 'T': timings = 1; break;
        default: return 2;
        }
    }
    if (argc - optind != 2 || repeat < 1) {
        fprintf(stderr, "usage: pam_drive SERVICE USER [-a ANSWER]... [-t TTY] [-r RHOST] [-u RUSER] [-n N] [-c] [-T]\n");
        return 2;
    }
    if (counts)
        printf("before threads=%d fds=%d\n", count_entries("/proc/self/task"),
               count_entries("/proc/self/fd"));
    for (int round = 0; round < repeat; round++) {
        struct pam_conv conv = {converse, &s};
        pam_handle_t *pamh = NULL;
        struct timespec t0, t1;
        char user[256];
        s.next = 0;
        if (strstr(argv[optind + 1], "%d"))
            snprintf(user, sizeof user, argv[optind + 1], round);
        else
            snprintf(user, sizeof user, "%s", argv[optind + 1]);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = pam_start(argv[optind], user, &conv, &pamh);
        if (rc == PAM_SUCCESS && tty) rc = pam_set_item(pamh, PAM_TTY, tty);
        if (rc == PAM_SUCCESS && rhost) rc = pam_set_item(pamh, PAM_RHOST, rhost);
        if (rc == PAM_SUCCESS && ruser) rc = pam_set_item(pamh, PAM_RUSER, ruser);
        if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
        last = rc;
        const char *name = pam_strerror(pamh, rc);
        printf("result=%d %s\n", rc, name);
        pam_end(pamh, rc);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (timings)
            printf("us=%ld\n", (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000L);
    }
    if (counts)
        printf("after threads=%d fds=%d\n", count_entries("/proc/self/task"),
               count_entries("/proc/self/fd"));
    fflush(stdout);
    return last == PAM_SUCCESS ? 0 : 1;
}
