/* bench/delayproxy — a TCP proxy on 127.0.0.1 that delays every byte by a fixed one-way time
 * in each direction: a WAN round trip of 2 x DELAY without netem (sch_netem is not available on
 * every kernel the bench runs on).
 *
 *   delayproxy LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_US
 *
 * It is a delay line, not stop-and-wait: a reader thread per direction timestamps what it reads
 * and queues it; a writer thread sends each chunk when its time comes, so bulk transfers keep
 * their throughput and only round trips (what file-by-file copies pay per file) get slower. The
 * queue is bounded (like a TCP window), so a fast sender is held back as on a real link.
 * Runs until killed; the bench starts it inside its sandbox and stops it by pid. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX (256 * 1024)
#define QUEUE_MAX (16u << 20) /* bytes in flight per direction: a 16 MiB window */

struct chunk {
        struct chunk *next;
        struct timespec due;
        size_t len; /* 0 = end of stream */
        char data[];
};

struct pipe_dir {
        int from, to;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct chunk *head, *tail;
        size_t queued;
        struct conn *conn;
};

struct conn {
        struct pipe_dir dir[2];
        int refs; /* threads still running */
        pthread_mutex_t mu;
};

static long delay_ns;

static void conn_unref(struct conn *c) {
        pthread_mutex_lock(&c->mu);
        int last = --c->refs == 0;
        pthread_mutex_unlock(&c->mu);
        if (last) {
                close(c->dir[0].from);
                close(c->dir[1].from);
                free(c);
        }
}

static void *reader(void *arg) {
        struct pipe_dir *d = arg;
        for (;;) {
                struct chunk *ch = malloc(sizeof *ch + READ_MAX);
                if (!ch)
                        abort();
                ssize_t n = read(d->from, ch->data, READ_MAX);
                if (n < 0 && errno == EINTR) {
                        free(ch);
                        continue;
                }
                ch->len = n > 0 ? (size_t)n : 0;
                ch->next = NULL;
                clock_gettime(CLOCK_MONOTONIC, &ch->due);
                ch->due.tv_nsec += delay_ns;
                ch->due.tv_sec += ch->due.tv_nsec / 1000000000L;
                ch->due.tv_nsec %= 1000000000L;
                pthread_mutex_lock(&d->mu);
                while (d->queued > QUEUE_MAX)
                        pthread_cond_wait(&d->cv, &d->mu);
                if (d->tail)
                        d->tail->next = ch;
                else
                        d->head = ch;
                d->tail = ch;
                d->queued += ch->len;
                pthread_cond_broadcast(&d->cv);
                pthread_mutex_unlock(&d->mu);
                if (n <= 0)
                        break;
        }
        conn_unref(d->conn);
        return NULL;
}

static void *writer(void *arg) {
        struct pipe_dir *d = arg;
        for (;;) {
                pthread_mutex_lock(&d->mu);
                while (!d->head)
                        pthread_cond_wait(&d->cv, &d->mu);
                struct chunk *ch = d->head;
                d->head = ch->next;
                if (!d->head)
                        d->tail = NULL;
                d->queued -= ch->len;
                pthread_cond_broadcast(&d->cv);
                pthread_mutex_unlock(&d->mu);
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ch->due, NULL) == EINTR)
                        ;
                if (ch->len == 0) {
                        shutdown(d->to, SHUT_WR);
                        free(ch);
                        break;
                }
                for (size_t off = 0; off < ch->len;) {
                        ssize_t k = write(d->to, ch->data + off, ch->len - off);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) { /* the other side is gone: stop reading it too */
                                shutdown(d->from, SHUT_RD);
                                break;
                        }
                        off += (size_t)k;
                }
                free(ch);
        }
        conn_unref(d->conn);
        return NULL;
}

static int connect_to(int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_US\n", argv[0]);
                return 2;
        }
        int lport = atoi(argv[1]), tport = atoi(argv[2]);
        delay_ns = atol(argv[3]) * 1000L;
        signal(SIGPIPE, SIG_IGN);

        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lport) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0) {
                perror("delayproxy: listen");
                return 1;
        }
        fprintf(stderr, "delayproxy: 127.0.0.1:%d -> 127.0.0.1:%d, %ld us each way\n", lport,
                tport, delay_ns / 1000);
        for (;;) {
                int cfd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0)
                        continue;
                int sfd = connect_to(tport);
                if (sfd < 0) {
                        close(cfd);
                        continue;
                }
                /* SMB's small requests must not wait for Nagle on top of the delay. */
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct conn *c = calloc(1, sizeof *c);
                if (!c)
                        abort();
                pthread_mutex_init(&c->mu, NULL);
                c->refs = 4;
                int ends[2][2] = { { cfd, sfd }, { sfd, cfd } };
                for (int i = 0; i < 2; i++) {
                        struct pipe_dir *d = &c->dir[i];
                        d->from = ends[i][0];
                        d->to = ends[i][1];
                        d->conn = c;
                        pthread_mutex_init(&d->mu, NULL);
                        pthread_cond_init(&d->cv, NULL);
                }
                pthread_attr_t at;
                pthread_attr_init(&at);
                pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
                pthread_attr_setstacksize(&at, 256 * 1024);
                for (int i = 0; i < 2; i++) {
                        pthread_t t;
                        pthread_create(&t, &at, reader, &c->dir[i]);
                        pthread_create(&t, &at, writer, &c->dir[i]);
                }
                pthread_attr_destroy(&at);
        }
}
