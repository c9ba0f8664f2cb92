/*
 * The live benchmark's load generator (bench/live.py, CSender): replays one connection's
 * timeline to many connections in real time, like live.py's PythonSender, at a fraction of
 * its CPU. The benchmark should measure the recorder, and on 2 cores a Python loop doing one
 * sendto per packet needs most of a core at 500 connections.
 *
 *     sender SCHEDULE VIDEO_FD AUDIO_FD [DRAIN_FD...]
 *
 * VIDEO_FD and AUDIO_FD are UDP sockets the parent bound (127.0.0.1, ports P and P + 1 per
 * medium) and passed down; the DRAIN_FDs (those two and their P + 1 partners) receive the
 * recorder's RTCP, which is read and counted. The parent keeps the same sockets, so what
 * arrives after this process exits is still read (and counted) by it.
 *
 * SCHEDULE, written by live.py, little-endian:
 *     "RTPSEND1", u32 groups, u32 connections, u32 events, u32 0
 *     u64 offset_ns[groups]                            start offset of each group
 *     per connection: u32 group, u8 video_ssrc[4], u8 audio_ssrc[4], u16 video_port,
 *                     u16 audio_port                   (SSRCs already in network order)
 *     per event: u64 due_ns, u16 length, u8 kind (0 video, 1 audio), u8 0, u8 packet[length]
 * Events are in due order; a connection's packets are the event packets with bytes 8-11
 * replaced by its SSRC for that medium, sent to 127.0.0.1:<its port> at due + its group's
 * offset.
 *
 * The loop is the Python one's: each pass reads the clock once, sends every group's due
 * events to every member (lateness = that clock - due), then sleeps until the next due time.
 * Sends go out in the same order, batched by sendmmsg.
 *
 * At the end one line of JSON on stdout: sent, send_errors, max_late, feedback, wall, the
 * process's own user and sys CPU, and counts of passes and sendmmsg calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

/* The kernel caps one sendmmsg/recvmmsg call at UIO_MAXIOV (1024) messages. */
#define BATCH 1024
#define DRAIN_BATCH 64
#define MAX_DRAIN_FDS 16
#define RTP_HEADER 12
/* RTCP is a few packets per stream per second and each socket buffers 4 MiB: reading it every
 * 10 ms rather than after every pass (thousands a second) saves most of those recv calls. */
#define DRAIN_EVERY_NS 10000000LL
/* As the Python sender: the first packets are due 50 ms after start. */
#define START_DELAY_NS 50000000LL

struct event {
    int64_t due;
    const uint8_t *data;
    uint16_t length;
    uint8_t kind;
};

struct connection {
    uint8_t ssrc[2][4];
    struct sockaddr_in to[2];
};

struct group {
    int64_t offset;
    uint32_t *members; /* connection indices, in the schedule's order */
    uint32_t count;
    uint32_t next; /* index of the group's next event */
};

static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH][3];
static unsigned pending_count;
static int pending_fd = -1;

static uint64_t sent, send_errors, feedback, sendmmsg_calls, passes;

/* err: the errno of a failed call, or 0 for a bad schedule. */
static _Noreturn void die(const char *what, int err)
{
    fprintf(stderr, "sender: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; i--)
        value = value << 8 | p[i];
    return value;
}

/* A bounds-checked reader over the schedule file. */
struct reader {
    const uint8_t *at, *end;
};

static const uint8_t *take(struct reader *r, size_t bytes)
{
    if ((size_t)(r->end - r->at) < bytes)
        die("schedule truncated", 0);
    const uint8_t *p = r->at;
    r->at += bytes;
    return p;
}

static uint8_t *load(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, errno);
    if (fseek(f, 0, SEEK_END) != 0)
        die("seek", errno);
    long length = ftell(f);
    if (length < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("seek", errno);
    uint8_t *data = malloc(length ? (size_t)length : 1);
    if (!data)
        die("malloc", errno);
    if (fread(data, 1, (size_t)length, f) != (size_t)length)
        die("read", errno);
    fclose(f);
    *size = (size_t)length;
    return data;
}

/* Sends the batch. A failed message is counted and skipped, as the Python sender counts a
 * failed sendto and goes on: sendmmsg returns how many went out before the failure, the next
 * call reports it. */
static void flush(void)
{
    unsigned done = 0;
    while (done < pending_count) {
        sendmmsg_calls++;
        int n = sendmmsg(pending_fd, msgs + done, pending_count - done, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            send_errors++;
            done++;
        } else {
            sent += (unsigned)n;
            done += (unsigned)n;
        }
    }
    pending_count = 0;
}

/* Queues one packet: the event's head and tail around the connection's SSRC, no copy. The
 * batch is flushed when the medium (so the socket) changes, which keeps the send order of the
 * Python sender's one sendto per packet. */
static void queue(int fd, const struct event *ev, struct connection *c)
{
    if (pending_count && (fd != pending_fd || pending_count == BATCH))
        flush();
    pending_fd = fd;
    struct iovec *iov = iovs[pending_count];
    iov[0] = (struct iovec){(void *)ev->data, 8};
    iov[1] = (struct iovec){c->ssrc[ev->kind], 4};
    iov[2] = (struct iovec){(void *)(ev->data + RTP_HEADER), ev->length - RTP_HEADER};
    msgs[pending_count].msg_hdr = (struct msghdr){
        .msg_name = &c->to[ev->kind],
        .msg_namelen = sizeof c->to[ev->kind],
        .msg_iov = iov,
        .msg_iovlen = 3,
    };
    pending_count++;
}

static void drain(const int *fds, int count)
{
    static uint8_t buffers[DRAIN_BATCH][2048];
    static struct iovec iov[DRAIN_BATCH];
    static struct mmsghdr in[DRAIN_BATCH];
    for (int i = 0; i < DRAIN_BATCH; i++) {
        iov[i] = (struct iovec){buffers[i], sizeof buffers[i]};
        in[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    for (int i = 0; i < count; i++) {
        for (;;) {
            int n = recvmmsg(fds[i], in, DRAIN_BATCH, MSG_DONTWAIT, NULL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            feedback += (unsigned)n;
            if (n < DRAIN_BATCH)
                break;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc - 4 > MAX_DRAIN_FDS) {
        fprintf(stderr, "usage: sender SCHEDULE VIDEO_FD AUDIO_FD [DRAIN_FD...]\n");
        return 2;
    }
    int media_fd[2] = {atoi(argv[2]), atoi(argv[3])};
    int drain_fds[MAX_DRAIN_FDS], drain_count = argc - 4;
    for (int i = 0; i < drain_count; i++)
        drain_fds[i] = atoi(argv[4 + i]);

    size_t size;
    uint8_t *file = load(argv[1], &size);
    struct reader r = {file, file + size};
    if (memcmp(take(&r, 8), "RTPSEND1", 8) != 0)
        die("not a schedule file", 0);
    const uint8_t *head = take(&r, 16);
    uint32_t group_count = (uint32_t)le(head, 4);
    uint32_t connection_count = (uint32_t)le(head + 4, 4);
    uint32_t event_count = (uint32_t)le(head + 8, 4);
    if (!group_count)
        die("no groups", 0);

    struct group *groups = calloc(group_count, sizeof *groups);
    struct connection *connections = calloc(connection_count ? connection_count : 1,
                                            sizeof *connections);
    uint32_t *member_of = calloc(connection_count ? connection_count : 1, sizeof *member_of);
    struct event *events = calloc(event_count ? event_count : 1, sizeof *events);
    if (!groups || !connections || !member_of || !events)
        die("calloc", errno);
    for (uint32_t g = 0; g < group_count; g++)
        groups[g].offset = (int64_t)le(take(&r, 8), 8);
    for (uint32_t i = 0; i < connection_count; i++) {
        const uint8_t *p = take(&r, 16);
        member_of[i] = (uint32_t)le(p, 4);
        if (member_of[i] >= group_count)
            die("connection in no group", 0);
        struct connection *c = &connections[i];
        memcpy(c->ssrc[0], p + 4, 4);
        memcpy(c->ssrc[1], p + 8, 4);
        for (int kind = 0; kind < 2; kind++) {
            c->to[kind] = (struct sockaddr_in){
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t)le(p + 12 + 2 * kind, 2)),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
            };
        }
        groups[member_of[i]].count++;
    }
    for (uint32_t g = 0; g < group_count; g++) {
        groups[g].members = calloc(groups[g].count ? groups[g].count : 1, sizeof(uint32_t));
        if (!groups[g].members)
            die("calloc", errno);
        groups[g].count = 0;
    }
    for (uint32_t i = 0; i < connection_count; i++) {
        struct group *g = &groups[member_of[i]];
        g->members[g->count++] = i;
    }
    for (uint32_t i = 0; i < event_count; i++) {
        const uint8_t *p = take(&r, 12);
        events[i].due = (int64_t)le(p, 8);
        events[i].length = (uint16_t)le(p + 8, 2);
        events[i].kind = p[10];
        if (events[i].length < RTP_HEADER || events[i].kind > 1)
            die("bad event", 0);
        events[i].data = take(&r, events[i].length);
    }

    int64_t start = now_ns() + START_DELAY_NS;
    int64_t last_drain = 0, max_late = 0, wall;
    for (;;) {
        passes++;
        int64_t now = now_ns() - start;
        int64_t upcoming = INT64_MAX;
        int pending = 0;
        for (uint32_t g = 0; g < group_count; g++) {
            struct group *group = &groups[g];
            while (group->next < event_count) {
                const struct event *ev = &events[group->next];
                int64_t due = ev->due + group->offset;
                if (due > now) {
                    if (due < upcoming)
                        upcoming = due;
                    break;
                }
                if (now - due > max_late)
                    max_late = now - due;
                for (uint32_t m = 0; m < group->count; m++)
                    queue(media_fd[ev->kind], ev, &connections[group->members[m]]);
                group->next++;
            }
            if (group->next < event_count)
                pending = 1;
        }
        flush();
        if (!pending) {
            wall = now_ns() - start;
            break;
        }
        if (now - last_drain >= DRAIN_EVERY_NS) {
            drain(drain_fds, drain_count);
            last_drain = now;
        }
        int64_t wake = start + upcoming;
        struct timespec until = {wake / 1000000000LL, wake % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
    }
    drain(drain_fds, drain_count);

    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("{\"sent\": %" PRIu64 ", \"send_errors\": %" PRIu64 ", \"max_late\": %.6f, "
           "\"feedback\": %" PRIu64 ", \"wall\": %.6f, \"user\": %.6f, \"sys\": %.6f, "
           "\"passes\": %" PRIu64 ", \"sendmmsg_calls\": %" PRIu64 "}\n",
           sent, send_errors, max_late / 1e9, feedback, wall / 1e9,
           usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6,
           usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6, passes, sendmmsg_calls);
    return 0;
}
