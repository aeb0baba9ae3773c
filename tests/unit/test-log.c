/* common/log.c: the "<N>" lines on stderr, the journal entry with its fields (through the seam),
 * the fallback to stderr, the LOG_TARGET_AUTO detection, and the callback helper of the layers
 * below gateway/. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "test.h"

/* Runs fn with stderr on a temporary file; returns what it wrote (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
        static char out[8192];
        char name[] = "/tmp/hcgw-log-XXXXXX";
        int fd = mkstemp(name), saved;
        ssize_t n;

        out[0] = '\0';
        if (fd < 0)
                return out;
        unlink(name);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        fn();
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        n = pread(fd, out, sizeof out - 1, 0);
        out[n > 0 ? n : 0] = '\0';
        close(fd);
        return out;
}

static int ret_errno;

static void write_lines(void)
{
        log_info("Connected to %s:%u", "broker", 8883u);
        log_debug("not shown at level info");
        log_warning("request %s", "a\n<0>forged\x01");
        ret_errno = log_error_errno(-EIO, "Failed to commit: %m");
        log_full_fields(LOG_NOTICE, LOG_FIELDS({"SENSOR", "bed"}), "Bed occupied");
}

static void test_stderr_lines(void)
{
        const char *out;

        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_INFO);
        out = capture_stderr(write_lines);
        CHECK_STREQ(out, "<6>Connected to broker:8883\n"
                         "<4>request a\\n<0>forged\\x01\n" /* one call, one line: no forged priority */
                         "<3>Failed to commit: Input/output error\n"
                         "<5>Bed occupied\n"); /* fields are for the journal only */
        CHECK(ret_errno == -EIO);
}

/* The fake journal: the last entry, fields joined by '\n'. */
static char entry[4096];
static int sends, send_result;

static int fake_sendv(const struct iovec *iov, int n)
{
        size_t o = 0;

        sends++;
        entry[0] = '\0';
        for (int i = 0; i < n && o + iov[i].iov_len + 2 < sizeof entry; i++) {
                memcpy(entry + o, iov[i].iov_base, iov[i].iov_len);
                o += iov[i].iov_len;
                entry[o++] = '\n';
                entry[o] = '\0';
        }
        return send_result;
}

static void write_alert(void)
{
        char seq[21];

        snprintf(seq, sizeof seq, "%llu", 42ULL);
        (void)log_full_errno_fields(LOG_WARNING, ENOSPC,
                                    LOG_FIELDS({"SENSOR", "bed"}, {"ALERT_ID", "a-17"}, {"SEQ", seq}),
                                    "Alert %s queued: %m", "bed_exit");
}

static void test_journal_fields(void)
{
        const char *out;

        log_set_journal_sendv(fake_sendv);
        log_set_target(LOG_TARGET_JOURNAL);
        sends = send_result = 0;
        out = capture_stderr(write_alert);
        CHECK(sends == 1);
        CHECK_STREQ(out, ""); /* the journal got it: nothing on stderr */
        CHECK(strstr(entry, "MESSAGE=Alert bed_exit queued: No space left on device\n") == entry);
        CHECK(strstr(entry, "\nPRIORITY=4\n"));
        CHECK(strstr(entry, "\nSENSOR=bed\n"));
        CHECK(strstr(entry, "\nALERT_ID=a-17\n"));
        CHECK(strstr(entry, "\nSEQ=42\n"));
        CHECK(strstr(entry, "\nERRNO=28\n"));
        CHECK(strstr(entry, "\nCODE_FUNC=write_alert\n"));
        CHECK(strstr(entry, "\nCODE_FILE=") && strstr(entry, "test-log.c\n"));
        CHECK(strstr(entry, "\nSYSLOG_IDENTIFIER=test-log\n"));

        /* The journal refuses (gone, full): the line still goes out, on stderr. */
        send_result = -ECONNREFUSED;
        out = capture_stderr(write_alert);
        CHECK(sends == 2);
        CHECK_STREQ(out, "<4>Alert bed_exit queued: No space left on device\n");

        /* Below the level: nothing anywhere. */
        send_result = 0;
        log_set_max_level(LOG_ERR);
        out = capture_stderr(write_alert);
        CHECK(sends == 2 && out[0] == '\0');
        log_set_max_level(LOG_INFO);
        log_set_target(LOG_TARGET_STDERR);
        log_set_journal_sendv(NULL);
}

static LogTarget opened;
static void do_open(void)
{
        log_open();
        opened = log_target();
}

/* As systemd's LOG_TARGET_AUTO: the journal only when $JOURNAL_STREAM names stderr itself (a child
 * whose stderr is a pipe inherits the variable but must keep writing lines). */
static void test_journal_stream_detection(void)
{
        char name[] = "/tmp/hcgw-log-XXXXXX", js[64], other[64];
        struct stat st;
        int fd = mkstemp(name);

        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        unlink(name);
        snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        snprintf(other, sizeof other, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + 1);
        CHECK(log_journal_stream_is_fd(js, fd));
        CHECK(!log_journal_stream_is_fd(other, fd));
        CHECK(!log_journal_stream_is_fd(NULL, fd));
        CHECK(!log_journal_stream_is_fd("", fd));
        CHECK(!log_journal_stream_is_fd("12", fd));
        CHECK(!log_journal_stream_is_fd("12:", fd));
        CHECK(!log_journal_stream_is_fd(":12", fd));
        CHECK(!log_journal_stream_is_fd("-1:12", fd));
        CHECK(!log_journal_stream_is_fd("99999999999999999999999:1", fd));
        {
                char trailing[80];
                snprintf(trailing, sizeof trailing, "%sx", js);
                CHECK(!log_journal_stream_is_fd(trailing, fd));
        }

        /* log_open() with stderr on that file. */
        setenv("JOURNAL_STREAM", js, 1);
        {
                int saved = dup(STDERR_FILENO);
                dup2(fd, STDERR_FILENO);
                do_open();
                dup2(saved, STDERR_FILENO);
                close(saved);
        }
        CHECK(opened == LOG_TARGET_JOURNAL);
        /* The same variable, stderr elsewhere (inherited by a test's child): lines. */
        do_open();
        CHECK(opened == LOG_TARGET_STDERR);
        unsetenv("JOURNAL_STREAM");
        do_open();
        CHECK(opened == LOG_TARGET_STDERR);
        close(fd);
}

static char cb_message[2048];
static int cb_priority, cb_calls;
static void *cb_userdata;

static void on_log(void *userdata, int priority, const char *message)
{
        cb_calls++;
        cb_userdata = userdata;
        cb_priority = priority;
        snprintf(cb_message, sizeof cb_message, "%s", message);
}

static void test_callback(void)
{
        int token;

        log_to_callback(on_log, &token, LOG_WARNING, "Broker %s:%u refused: %s", "h", 1883u,
                        "not authorised");
        CHECK(cb_calls == 1 && cb_userdata == &token && cb_priority == LOG_WARNING);
        CHECK_STREQ(cb_message, "Broker h:1883 refused: not authorised");
        log_to_callback(NULL, &token, LOG_ERR, "nobody listens %d", 1);
        CHECK(cb_calls == 1);
}

TEST_MAIN(TEST(test_stderr_lines), TEST(test_journal_fields), TEST(test_journal_stream_detection),
          TEST(test_callback))
