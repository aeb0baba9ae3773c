/* bench/throughput: the real gateway with the simulated home at maximum speed against a local
 * mosquitto, and in the same run the baseline of a minimal libmosquitto QoS 1 publisher on the same
 * broker. Prints items per second to PUBACK, bytes written to disk per item, and peak RSS.
 *
 * usage: throughput-bench HOMECARE_GW [ITEMS] */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "common/time-util.h"

/* Seconds on CLOCK_MONOTONIC. */
static double now(void)
{
        return (double)now_monotonic() / USEC_PER_SEC;
}

static int free_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;
        bind(fd, (struct sockaddr *)&a, sizeof a);
        getsockname(fd, (struct sockaddr *)&a, &l);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static pid_t spawn(char *const argv[], const char *err_path)
{
        pid_t pid = fork();
        if (pid == 0) {
                FILE *f = freopen(err_path, "w", stderr);
                (void)f;
                execvp(argv[0], argv);
                _exit(127);
        }
        return pid;
}

/* The broker is up when it accepts a connection (a bench, not a test: a bounded retry is fine). */
static int wait_broker(int port)
{
        for (int i = 0; i < 200; i++) {
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = htons(port),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
                close(fd);
                if (ok)
                        return 0;
                usleep(25000);
        }
        return -ETIMEDOUT;
}

/* ---- baseline: a minimal QoS 1 publisher, 100 in flight ---- */
static atomic_long acked;
static void on_pub(struct mosquitto *m, void *u, int mid)
{
        atomic_fetch_add(&acked, 1);
}

static double baseline(int port, long n)
{
        struct mosquitto *m = mosquitto_new("bench-baseline", true, NULL);
        char payload[181];
        double t0, t1;

        memset(payload, 'x', 180);
        payload[180] = 0;
        mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 100);
        mosquitto_publish_callback_set(m, on_pub);
        if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS)
                return 0;
        mosquitto_loop_start(m);
        t0 = now();
        for (long i = 0; i < n; i++) {
                while (i - atomic_load(&acked) >= 100)
                        usleep(50);
                mosquitto_publish(m, NULL, "bench/baseline", 180, payload, 1, false);
        }
        while (atomic_load(&acked) < n)
                usleep(100);
        t1 = now();
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        mosquitto_destroy(m);
        return n / (t1 - t0);
}

/* ---- the gateway: count items arriving at a subscriber ---- */
static atomic_long items, payload_bytes;
static void on_msg(struct mosquitto *m, void *u, const struct mosquitto_message *msg)
{
        const char *p = msg->payload, *end = p + msg->payloadlen;
        if (!strstr(msg->topic, "/telemetry") && !strstr(msg->topic, "/events") &&
            !strstr(msg->topic, "/alerts"))
                return;
        atomic_fetch_add(&payload_bytes, msg->payloadlen);
        for (; p && p < end; p++) {
                p = memmem(p, (size_t)(end - p), "\"seq\":", 6);
                if (!p)
                        break;
                atomic_fetch_add(&items, 1);
        }
}

static long read_field(const char *path, const char *key)
{
        char line[256];
        long v = -1;
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, strlen(key)) == 0)
                        v = strtol(line + strlen(key), NULL, 10);
        fclose(f);
        return v;
}

int main(int argc, char *argv[])
{
        const char *gw = argc > 1 ? argv[1] : "build/homecare-gw";
        long n = argc > 2 ? atol(argv[2]) : 100000;
        char dir[] = "/tmp/hcgw-bench-XXXXXX", path[512], conf[512], portstr[16];
        int port = free_port();
        pid_t broker, gwpid;
        double rate_base, t0, t1;
        long write_bytes, wchar, hwm;
        struct mosquitto *sub;
        FILE *f;

        if (!mkdtemp(dir))
                return 1;
        mosquitto_lib_init();
        snprintf(path, sizeof path, "%s/mosquitto.conf", dir);
        f = fopen(path, "w");
        fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n", port);
        fclose(f);
        snprintf(conf, sizeof conf, "%s/mosquitto.log", dir);
        broker = spawn((char *[]){"mosquitto", "-c", path, NULL}, conf);
        if (wait_broker(port) < 0) {
                fprintf(stderr, "mosquitto did not start\n");
                return 1;
        }

        rate_base = baseline(port, n);

        sub = mosquitto_new("bench-sub", true, NULL);
        mosquitto_message_callback_set(sub, on_msg);
        mosquitto_connect(sub, "127.0.0.1", port, 60);
        mosquitto_subscribe(sub, NULL, "homecare/v1/bench/#", 1);
        mosquitto_loop_start(sub);
        usleep(200000); /* the SUBACK; items published before it would only be uncounted, not lost */

        snprintf(conf, sizeof conf, "%s/gw.conf", dir);
        f = fopen(conf, "w");
        fprintf(f,
                "[Gateway]\nId=bench\nStateDirectory=%s/state\n[Uplink]\nBroker=mqtt://127.0.0.1:%d\n"
                "[Simulation]\nEnabled=yes\nSpeed=max\nLimit=%ld\nStart=2026-03-02T06:00:00Z\n",
                dir, port, n);
        fclose(f);
        snprintf(path, sizeof path, "%s/gw.log", dir);
        snprintf(portstr, sizeof portstr, "%d", port);
        t0 = now();
        gwpid = spawn((char *[]){(char *)gw, "run", "--config", conf, NULL}, path);
        while (atomic_load(&items) < n && now() - t0 < 600)
                usleep(1000);
        t1 = now();
        snprintf(path, sizeof path, "/proc/%d/io", gwpid);
        write_bytes = read_field(path, "write_bytes:");
        wchar = read_field(path, "wchar:");
        snprintf(path, sizeof path, "/proc/%d/status", gwpid);
        hwm = read_field(path, "VmHWM:");
        kill(gwpid, SIGTERM);
        waitpid(gwpid, NULL, 0);
        mosquitto_loop_stop(sub, true);
        kill(broker, SIGTERM);
        waitpid(broker, NULL, 0);

        printf("bench/throughput: %ld items through a local mosquitto 2.0 on 127.0.0.1, same run\n\n", n);
        printf("%-46s %12s %16s %10s\n", "", "items/s", "disk B/item", "peak RSS");
        printf("%-46s %12.0f %16s %10s\n", "baseline: minimal libmosquitto QoS 1 publisher", rate_base, "-",
               "-");
        printf("%-46s %12.0f %16.0f %7.1f MB\n", "homecare-gw: sim -> SQLite -> MQTT -> PUBACK",
               atomic_load(&items) / (t1 - t0), (double)write_bytes / n, hwm / 1024.0);
        printf(
            "\n  homecare-gw wrote %.1f MB to disk (write_bytes) from %.1f MB written by syscalls (wchar);\n"
            "  %.0f payload bytes per item on the wire; %ld of %ld items counted at the subscriber.\n",
            write_bytes / 1e6, wchar / 1e6, (double)atomic_load(&payload_bytes) / n, atomic_load(&items), n);
        printf("  Baseline payloads are 180 bytes, one per message; the gateway batches up to 200 items.\n");
        snprintf(path, sizeof path, "rm -rf %s", dir);
        if (system(path) != 0)
                return 1;
        return atomic_load(&items) >= n ? 0 : 1;
}
