/*
 * pam_drive: an in-process PAM driver for stepup's tests and benchmarks.
 *
 *   pam_drive SERVICE USER [-a ANSWER]... [-t TTY] [-r RHOST] [-u RUSER]
 *             [-n REPEAT] [-c] [-T] [-A FILE]... [-I ITEM=FILE]... [-D MS] [-P]
 *
 * Runs pam_start / pam_authenticate / pam_end REPEAT times (default 1).
 * Prompts (echo on or off) are answered with the -a values in order, afresh
 * for each round; with none left the conversation fails (PAM_CONV_ERR).
 * Info and error messages are printed as "info: ..." / "error: ...".
 * Prints "result=N NAME" per round. -c prints the thread and fd counts of
 * this process before the first round and after the last; -T prints each
 * round's wall time in microseconds ("us=N"). A USER containing "%d" is
 * formatted with the round number (0, 1, …): one user per round.
 *
 * For hostile-input tests, values too big for argv or holding bytes a shell
 * argument cannot:
 *   -A FILE       one more answer, FILE's bytes (in order with the -a ones);
 *   -I ITEM=FILE  set ITEM (user, tty, rhost, ruser) to FILE's bytes with
 *                 pam_set_item after pam_start. Items are C strings: what
 *                 follows a NUL in FILE never reaches the module.
 *   -D MS         wait MS milliseconds before answering each prompt (a
 *                 person who is slow to type).
 *   -P            after the last round, wipe the driver's own copies of the
 *                 answers, print "paused pid=N" and wait for a line (or EOF)
 *                 on stdin before exiting, so a test can read this process's
 *                 memory (/proc/N/mem) for what the module left behind.
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
#define MAX_FILE_ITEMS 8

struct script {
    char *answers[MAX_ANSWERS];
    int count;
    int next;
    long delay_ms;
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

/* FILE's whole contents, NUL-terminated (what follows an inner NUL is
 * there but invisible to C string users). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) exit(2);
    buf[len] = 0;
    return buf;
}

static int item_type(const char *name) {
    if (!strcmp(name, "user")) return PAM_USER;
    if (!strcmp(name, "tty")) return PAM_TTY;
    if (!strcmp(name, "rhost")) return PAM_RHOST;
    if (!strcmp(name, "ruser")) return PAM_RUSER;
    return -1;
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
            if (s->delay_ms > 0) {
                struct timespec d = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000000L};
                nanosleep(&d, NULL);
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
    int repeat = 1, counts = 0, timings = 0, pause_at_end = 0, opt, last = PAM_SYSTEM_ERR;
    int file_items = 0, file_item_type[MAX_FILE_ITEMS];
    char *file_item_value[MAX_FILE_ITEMS];
    int answer_from_file[MAX_ANSWERS] = {0};
    while ((opt = getopt(argc, argv, "a:t:r:u:n:cTA:I:D:P")) != -1) {
        switch (opt) {
        case 'a':
            if (s.count == MAX_ANSWERS) return 2;
            s.answers[s.count++] = optarg;
            break;
        case 'A':
            if (s.count == MAX_ANSWERS) return 2;
            answer_from_file[s.count] = 1;
            s.answers[s.count++] = slurp(optarg);
            break;
        case 'I': {
            char *eq = strchr(optarg, '=');
            if (!eq || file_items == MAX_FILE_ITEMS) return 2;
            *eq = 0;
            int type = item_type(optarg);
            if (type < 0) return 2;
            file_item_type[file_items] = type;
            file_item_value[file_items++] = slurp(eq + 1);
            break;
        }
        case 'P': pause_at_end = 1; break;
        case 'D': s.delay_ms = atol(optarg); break;
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
        for (int i = 0; rc == PAM_SUCCESS && i < file_items; i++)
            rc = pam_set_item(pamh, file_item_type[i], file_item_value[i]);
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
    for (int i = 0; i < s.count; i++)
        if (answer_from_file[i]) {
            explicit_bzero(s.answers[i], strlen(s.answers[i]));
            free(s.answers[i]);
            s.answers[i] = NULL;
        }
    for (int i = 0; i < file_items; i++) free(file_item_value[i]);
    if (pause_at_end) {
        /* The driver's own copies of the answers are gone: -A ones were
         * zeroed and freed above, -a ones are wiped from argv here; the
         * conversation's strdup copies belong to the module (which must
         * wipe and free them). */
        for (int i = optind - 1; i > 0; i--)
            if (argv[i - 1][0] == '-' && argv[i - 1][1] == 'a' && argv[i - 1][2] == 0)
                explicit_bzero(argv[i], strlen(argv[i]));
        char line[16];
        printf("paused pid=%d\n", (int)getpid());
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) { /* EOF: go on */ }
    }
    fflush(stdout);
    return last == PAM_SUCCESS ? 0 : 1;
}
