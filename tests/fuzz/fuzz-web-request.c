/* libFuzzer target: what the technician's page reads from outside, given to web_api_handle() as
 * web-server.c gives it: method, path, Host, Origin, Content-Type, Cookie, X-CSRF-Token, each ended
 * by a NUL byte, then the body. The first byte chooses: bit 0, a gateway whose password is set (with a
 * fresh session: the cookie "S" and the token "C" are replaced by valid ones) or one in first boot;
 * bit 1, only the headers (before the body is read); bit 2, the body announced too large. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "gateway/web-api.h"
#include "gateway/web-auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fake_status(void *userdata)
{
        return json_pack("{s:s, s:i}", "state", "online", "backlog", 0);
}

static int fake_test_alarm(void *userdata, const char *message, char *ret_alert_id, uint64_t *ret_seq,
                           unsigned *ret_retry_after_sec, char **ret_error)
{
        if (strlen(message) % 3 == 1) {
                *ret_retry_after_sec = 42;
                *ret_error = strdup("test alarms are rate-limited: try again in 42 s");
                return -EBUSY;
        }
        snprintf(ret_alert_id, ALERT_ID_MAX, "fuzz-%zu", strlen(message));
        *ret_seq = 1;
        return 0;
}

static WebApi *make(bool with_password)
{
        char *dir = strdup("/tmp/hcgw-fuzz-web-XXXXXX");
        WebApi *api = NULL;

        if (!dir || !mkdtemp(dir))
                abort();
        if (with_password && web_password_set(dir, "fuzzing password") < 0)
                abort();
        if (web_api_new(&(WebApiOptions){.state_dir = dir,
                                         .session_idle_usec = 60ULL * 1000 * 1000,
                                         .status = fake_status,
                                         .test_alarm = fake_test_alarm},
                        &api) < 0)
                abort();
        free(dir); /* copied; the directory stays for the run (a few small files in /tmp) */
        return api;
}

/* The next NUL-ended field of data, or NULL (absent) when it is empty. */
static char *field(const uint8_t **p, const uint8_t *end)
{
        const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
        char *s;

        if (!nul)
                return NULL;
        s = nul > *p ? strndup((const char *)*p, (size_t)(nul - *p)) : NULL;
        *p = nul + 1;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static WebApi *first_boot, *running;
        static uint64_t now = 1000ULL * 1000 * 1000;
        char token[WEB_TOKEN_MAX], csrf[WEB_TOKEN_MAX], cookie[WEB_TOKEN_MAX + 32];
        const uint8_t *p = data + 1, *end = data + size;
        char *f[7] = {};
        WebApi *api;
        WebResponse r;
        WebRequest q;

        if (!first_boot) {
                log_set_max_level(LOG_CRIT); /* every failed login is a warning */
                first_boot = make(false);
                running = make(true);
        }
        if (size < 1)
                return 0;
        api = data[0] & 1 ? running : first_boot;
        for (size_t i = 0; i < 7 && p < end; i++)
                f[i] = field(&p, end);
        now += 1000 * 1000; /* a second per request: lockouts end, sessions go idle */
        if (web_auth_login(web_api_auth(api), now, token, csrf) < 0)
                abort();
        if (f[5] && strcmp(f[5], "S") == 0) {
                snprintf(cookie, sizeof cookie, "x=y; hcgw_session=%s", token);
                free(f[5]);
                f[5] = strdup(cookie);
        }
        if (f[6] && strcmp(f[6], "C") == 0) {
                free(f[6]);
                f[6] = strdup(csrf);
        }
        q = (WebRequest){.method = f[0] ?: "GET",
                         .path = f[1] ?: "/",
                         .host = f[2],
                         .origin = f[3],
                         .content_type = f[4],
                         .cookie = f[5],
                         .csrf = f[6],
                         .client = "192.0.2.1",
                         .body = p < end ? (const char *)p : NULL,
                         .body_len = p < end ? (size_t)(end - p) : 0,
                         .headers_only = data[0] & 2,
                         .body_too_large = data[0] & 4,
                         .now_usec = now};
        if (web_api_handle(api, &q, &r) < 0 && r.status != 500)
                abort();
        if (r.action == WEB_ACTION_RESPOND && (r.status < 200 || r.status > 599))
                abort();
        if (r.body && (strlen(r.body) != r.size || !r.content_type))
                abort();
        if (r.body && strcmp(r.content_type, "application/json") == 0) {
                json_t *j = json_loads(r.body, 0, NULL);
                if (!j)
                        abort();
                json_decref(j);
        }
        if (r.action == WEB_ACTION_AWAIT_ACK && (r.seq != 1 || strncmp(r.alert_id, "fuzz-", 5) != 0))
                abort();
        web_response_done(&r);
        for (size_t i = 0; i < 7; i++)
                free(f[i]);
        return 0;
}
