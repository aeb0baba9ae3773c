/* The technician's page without HTTP: the [Web] keys, the lockout at exact times, sessions, the setup
 * code and password files, the request checks of web_api_handle() in their order, and the cookie and
 * Content-Type parsers. The server itself is tested over HTTPS by tests/web-api/test_api.py. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "gateway/config.h"
#include "gateway/web-api.h"
#include "gateway/web-auth.h"
#include "gateway/web-cert.h"
#include "test.h"

#define SEC (1000ULL * 1000)

static int parse(const char *text, Config **ret, char **ret_error)
{
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        int r = config_parse(f, "test.conf", ret, ret_error);
        fclose(f);
        return r;
}

#define BASE "[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://b\n"

static void test_config(void)
{
        Config *c = NULL;
        char *err = NULL;

        /* On by default, on every address, HTTPS. */
        CHECK(parse(BASE, &c, NULL) == 0);
        if (c) {
                CHECK_STREQ(c->web_listen, "0.0.0.0:8443");
                CHECK_STREQ(c->web_host, "0.0.0.0");
                CHECK(c->web_port == 8443);
                CHECK(!c->web_plain);
                CHECK(c->web_session_idle_min == 30);
                CHECK(!c->web_cert_file && !c->web_key_file);
        }
        c = config_free(c);
        /* The block, as written. */
        CHECK(parse(BASE "[Web]\n# address:port; empty disables the page\nListen=0.0.0.0:8443\n"
                         "CertFile=/etc/homecare-gw/web.pem\nKeyFile=/etc/homecare-gw/web.key\nPlain=no\n"
                         "SessionIdleMinutes=30\n",
                    &c, &err) == 0);
        CHECK(err == NULL);
        if (c) {
                CHECK_STREQ(c->web_cert_file, "/etc/homecare-gw/web.pem");
                CHECK_STREQ(c->web_key_file, "/etc/homecare-gw/web.key");
        }
        c = config_free(c);
        CHECK(parse(BASE "[Web]\nListen=\n", &c, NULL) == 0);
        CHECK(c && !c->web_listen && !c->web_host);
        c = config_free(c);
        CHECK(parse(BASE "[Web]\nListen=[::]:443\nPlain=yes\nSessionIdleMinutes=5\n", &c, NULL) == 0);
        if (c) {
                CHECK_STREQ(c->web_host, "::");
                CHECK(c->web_port == 443);
                CHECK(c->web_plain);
                CHECK(c->web_session_idle_min == 5);
        }
        c = config_free(c);

        static const struct {
                const char *text, *error;
        } bad[] = {
            {"[Web]\nListen=0.0.0.0\n", "test.conf:6: [Web] Listen: '0.0.0.0' has no port"},
            {"[Web]\nListen=gateway.local:8443\n",
             "test.conf:6: [Web] Listen: 'gateway.local' is not an IP address"},
            {"[Web]\nListen=127.0.0.1:0\n", "test.conf:6: [Web] Listen: '127.0.0.1:0' has an invalid port"},
            {"[Web]\nListen=127.0.0.1:65536\n",
             "test.conf:6: [Web] Listen: '127.0.0.1:65536' has an invalid port"},
            {"[Web]\nListen=[::1:8443\n",
             "test.conf:6: [Web] Listen: '[::1:8443' is not [IPv6 address]:port"},
            {"[Web]\nCertFile=/etc/web.pem\n",
             "test.conf:5: [Web] KeyFile: CertFile= and KeyFile= go together"},
            {"[Web]\nSessionIdleMinutes=0\n", "test.conf:6: [Web] SessionIdleMinutes: 0 is out of range"},
            {"[Web]\nPlain=maybe\n", "test.conf:6: [Web] Plain: 'maybe' is not a boolean"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char text[512];
                snprintf(text, sizeof text, BASE "%s", bad[i].text);
                err = NULL;
                c = NULL;
                CHECK(parse(text, &c, &err) == -EINVAL);
                if (!err || strncmp(err, bad[i].error, strlen(bad[i].error)) != 0)
                        fprintf(stderr, "expected '%s', got '%s'\n", bad[i].error, err ?: "(null)");
                CHECK(err && strncmp(err, bad[i].error, strlen(bad[i].error)) == 0);
                free(err);
                config_free(c);
        }
}

/* After 5 failures 1 s, then doubling, never above 5 min; a success resets. Both sides of each edge. */
static void test_lockout(void)
{
        Lockout l = {};
        uint64_t wait = 0, t = 1000 * SEC;

        for (int i = 0; i < 4; i++)
                CHECK(lockout_failed(&l, t, WEB_LOCKOUT_FREE) == 0);
        CHECK(lockout_allowed(&l, t, &wait));
        CHECK(lockout_failed(&l, t, WEB_LOCKOUT_FREE) == 1 * SEC);
        CHECK(!lockout_allowed(&l, t, &wait) && wait == 1 * SEC);
        CHECK(!lockout_allowed(&l, t + SEC - 1, &wait) && wait == 1);
        CHECK(lockout_allowed(&l, t + SEC, &wait));
        CHECK(lockout_failed(&l, t + SEC, WEB_LOCKOUT_FREE) == 2 * SEC);
        CHECK(lockout_failed(&l, t + 3 * SEC, WEB_LOCKOUT_FREE) == 4 * SEC);
        for (int i = 0; i < 20; i++)
                wait = lockout_failed(&l, t, WEB_LOCKOUT_FREE);
        CHECK(wait == WEB_LOCKOUT_MAX_USEC);
        CHECK(WEB_LOCKOUT_MAX_USEC == 300 * SEC);
        lockout_reset(&l);
        CHECK(lockout_allowed(&l, t, &wait));
        CHECK(lockout_failed(&l, t, WEB_LOCKOUT_FREE) == 0);
}

static char *temp_dir(void)
{
        char *d = strdup("/tmp/hcgw-test-web-XXXXXX");
        if (!d || !mkdtemp(d)) {
                free(d);
                return NULL;
        }
        return d;
}

static void remove_dir(const char *d)
{
        static const char *const files[] = {"web-setup-code", "web-password", "web.pem", "web.key"};
        char p[512];
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", d, files[i]);
                unlink(p);
        }
        rmdir(d);
}

static void test_files(void)
{
        char *d = temp_dir(), code[WEB_SETUP_CODE_MAX], again[WEB_SETUP_CODE_MAX], spaced[32], p[512];
        bool made = false;
        struct stat st;

        CHECK(d);
        if (!d)
                return;
        CHECK(!web_password_exists(d));
        CHECK(web_setup_code_get(d, code, &made) == 0 && made);
        CHECK(strlen(code) == 19 && code[4] == '-' && code[9] == '-' && code[14] == '-');
        snprintf(p, sizeof p, "%s/web-setup-code", d);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(web_setup_code_get(d, again, &made) == 0 && !made && strcmp(code, again) == 0);
        /* Read aloud and typed with spaces, or without separators: the same code. */
        snprintf(spaced, sizeof spaced, "%.4s %.4s %.4s %.4s", code, code + 5, code + 10, code + 15);
        CHECK(web_setup_code_matches(d, spaced));
        CHECK(web_setup_code_matches(d, code));
        CHECK(!web_setup_code_matches(d, "0000-0000-0000-000"));
        spaced[0] = spaced[0] == '9' ? '0' : (char)(spaced[0] + 1);
        CHECK(!web_setup_code_matches(d, spaced));
        CHECK(!web_setup_code_matches(d, ""));

        CHECK_STREQ(web_password_problem("123456789"), "the password needs at least 10 characters");
        CHECK(web_password_problem("1234567890") == NULL);
        CHECK(web_password_problem("ææææææææææ") == NULL); /* 10 characters, 20 bytes */
        CHECK(web_password_problem("æææææææææ") != NULL);  /* 9 characters, 18 bytes */
        CHECK(web_password_verify(d, "1234567890") == -ENOENT);

        CHECK(web_password_set(d, "correct horse") == 0);
        CHECK(web_password_exists(d));
        CHECK(access(p, F_OK) < 0); /* the code is spent */
        CHECK(web_setup_code_get(d, again, NULL) == -EEXIST);
        CHECK(web_password_verify(d, "correct horse") == 0);
        CHECK(web_password_verify(d, "correct horsE") == -EACCES);
        CHECK(web_password_verify(d, "") == -EACCES);
        snprintf(p, sizeof p, "%s/web-password", d);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);

        CHECK(web_password_reset(d, again) == 0);
        CHECK(!web_password_exists(d));
        CHECK(strcmp(again, code) != 0);
        CHECK(web_setup_code_matches(d, again));
        CHECK(!web_setup_code_matches(d, code));
        remove_dir(d);
        free(d);
}

static void test_sessions(void)
{
        WebAuth *a = NULL;
        char *d = temp_dir(), tok[WEB_SESSIONS_MAX + 1][WEB_TOKEN_MAX],
             csrf[WEB_SESSIONS_MAX + 1][WEB_TOKEN_MAX];
        uint64_t t = 5000 * SEC, idle = 30 * 60 * SEC, wait = 0;

        CHECK(d && web_auth_new(d, idle, &a) == 0);
        if (!a)
                goto out;
        CHECK(web_auth_login(a, t, tok[0], csrf[0]) == 0);
        CHECK(strlen(tok[0]) == 64 && strlen(csrf[0]) == 64 && strcmp(tok[0], csrf[0]) != 0);
        CHECK(web_auth_session(a, tok[0], t + idle)); /* used at the limit: still valid, and renewed */
        CHECK(web_auth_session(a, tok[0], t + 2 * idle));
        CHECK(!web_auth_session(a, tok[0], t + 3 * idle + 1)); /* idle one µs past the limit: gone */
        CHECK(!web_auth_session(a, tok[0], t + 2 * idle));
        CHECK(!web_auth_session(a, NULL, t));
        CHECK(!web_auth_session(a, "", t));

        CHECK(web_auth_login(a, t, tok[0], csrf[0]) == 0);
        CHECK(web_auth_csrf_ok(a, tok[0], csrf[0]));
        CHECK(!web_auth_csrf_ok(a, tok[0], tok[0]));
        CHECK(!web_auth_csrf_ok(a, tok[0], NULL));
        CHECK(!web_auth_csrf_ok(a, csrf[0], csrf[0]));
        web_auth_logout(a, tok[0]);
        CHECK(!web_auth_session(a, tok[0], t));

        /* A ninth login ends the session used least recently. */
        for (int i = 0; i <= WEB_SESSIONS_MAX; i++) {
                CHECK(web_auth_login(a, t + (uint64_t)i, tok[i], csrf[i]) == 0);
                if (i == 1)
                        CHECK(web_auth_session(a, tok[0], t + 100)); /* 0 used after 1 */
        }
        CHECK(web_auth_sessions(a) == WEB_SESSIONS_MAX);
        CHECK(web_auth_session(a, tok[0], t + 200));
        CHECK(!web_auth_session(a, tok[1], t + 200));
        CHECK(web_auth_session(a, tok[WEB_SESSIONS_MAX], t + 200));

        /* A password that appears (set by the page, or another process) ends every session. */
        CHECK(web_password_set(d, "0123456789") == 0);
        CHECK(web_auth_refresh(a));
        CHECK(web_auth_sessions(a) == 0);

        /* Tries: per address after 5, for everybody after 20; a success resets both. */
        for (int i = 0; i < 4; i++)
                CHECK(web_auth_try_failed(a, "192.0.2.1", t) == 0);
        CHECK(web_auth_try_failed(a, "192.0.2.1", t) == SEC);
        CHECK(!web_auth_try_allowed(a, "192.0.2.1", t, &wait) && wait == SEC);
        CHECK(web_auth_try_allowed(a, "192.0.2.2", t, &wait));
        for (int i = 0; i < 14; i++) {
                char addr[32];
                snprintf(addr, sizeof addr, "198.51.100.%d", i);
                CHECK(web_auth_try_failed(a, addr, t) == 0);
        }
        CHECK(web_auth_try_failed(a, "203.0.113.9", t) == SEC); /* the 20th failure of all */
        CHECK(!web_auth_try_allowed(a, "192.0.2.2", t, &wait) && wait == SEC);
        web_auth_try_succeeded(a, "192.0.2.1");
        CHECK(web_auth_try_allowed(a, "192.0.2.1", t, &wait));
        CHECK(web_auth_try_allowed(a, "192.0.2.2", t, &wait));
        web_auth_free(a);
out:
        if (d)
                remove_dir(d);
        free(d);
}

static void test_parsers(void)
{
        char buf[WEB_TOKEN_MAX];

        CHECK(web_cookie_get("hcgw_session=abc", "hcgw_session", buf, sizeof buf) && streq(buf, "abc"));
        CHECK(web_cookie_get("a=1; hcgw_session=xyz ;b=2", "hcgw_session", buf, sizeof buf) &&
              streq(buf, "xyz"));
        CHECK(!web_cookie_get("xhcgw_session=1", "hcgw_session", buf, sizeof buf));
        CHECK(!web_cookie_get("hcgw_sessionx=1", "hcgw_session", buf, sizeof buf));
        CHECK(!web_cookie_get("", "hcgw_session", buf, sizeof buf));
        CHECK(!web_cookie_get(NULL, "hcgw_session", buf, sizeof buf));
        CHECK(web_cookie_get("hcgw_session=", "hcgw_session", buf, sizeof buf) && streq(buf, ""));
        CHECK(!web_cookie_get(
            "hcgw_session=0123456789012345678901234567890123456789012345678901234567890123456789",
            "hcgw_session", buf, sizeof buf));

        CHECK(web_content_type_is_json("application/json"));
        CHECK(web_content_type_is_json("Application/JSON; charset=utf-8"));
        CHECK(!web_content_type_is_json("application/jsonp"));
        CHECK(!web_content_type_is_json("text/plain"));
        CHECK(!web_content_type_is_json(""));
        CHECK(!web_content_type_is_json(NULL));
}

/* A request as web-server.c makes it; the body's text, its Content-Type JSON when given. */
static WebResponse ask(WebApi *api, const char *method, const char *path, const char *body,
                       const char *cookie, const char *csrf, const char *origin)
{
        WebResponse r;
        WebRequest q = {.method = method,
                        .path = path,
                        .host = "gw.example:8443",
                        .origin = origin,
                        .content_type = body ? "application/json" : NULL,
                        .cookie = cookie,
                        .csrf = csrf,
                        .client = "192.0.2.7",
                        .body = body,
                        .body_len = body ? strlen(body) : 0,
                        .now_usec = 100 * SEC};
        CHECK(web_api_handle(api, &q, &r) == 0);
        return r;
}

static unsigned status_of(WebApi *api, const char *method, const char *path, const char *body,
                          const char *cookie, const char *csrf)
{
        WebResponse r = ask(api, method, path, body, cookie, csrf, NULL);
        unsigned s = r.action == WEB_ACTION_RESPOND ? r.status : 1000 + r.action;
        web_response_done(&r);
        return s;
}

static void test_api(void)
{
        char *d = temp_dir(), code[WEB_SETUP_CODE_MAX], body[256], cookie[128], csrf[WEB_TOKEN_MAX] = "";
        WebApi *api = NULL;
        WebResponse r;
        json_t *j;

        CHECK(d &&
              web_api_new(&(WebApiOptions){.state_dir = d, .session_idle_usec = 30 * 60 * SEC}, &api) == 0);
        if (!api)
                goto out;
        CHECK(web_setup_code_get(d, code, NULL) == 0);

        r = ask(api, "GET", "/", NULL, NULL, NULL, NULL);
        CHECK(r.status == 303 && streq(r.location, "/setup") && !r.api);
        web_response_done(&r);
        CHECK(status_of(api, "GET", "/setup", NULL, NULL, NULL) == 200);
        r = ask(api, "GET", "/api/setup", NULL, NULL, NULL, NULL);
        CHECK(r.status == 200 && r.api && r.body && streq(r.body, "{\"needed\":true}"));
        web_response_done(&r);
        CHECK(status_of(api, "GET", "/api/status", NULL, NULL, NULL) == 401);
        CHECK(status_of(api, "GET", "/api/unknown", NULL, NULL, NULL) == 401);
        CHECK(status_of(api, "PUT", "/api/status", NULL, NULL, NULL) == 405);
        CHECK(status_of(api, "POST", "/api/setup", "{\"setup_code\":1}", NULL, NULL) == 400);
        CHECK(status_of(api, "POST", "/api/setup", "{\"setup_code\":\"1\",\"setup_code\":\"2\"}", NULL,
                        NULL) == 400); /* duplicate keys */
        CHECK(status_of(api, "POST", "/api/setup",
                        "{\"setup_code\":\"1111-1111-1111-1111\",\"password\":\"x\"}", NULL, NULL) == 403);
        snprintf(body, sizeof body, "{\"setup_code\":\"%s\",\"password\":\"0123456789\"}", code);
        r = ask(api, "POST", "/api/setup", body, NULL, NULL, "https://elsewhere.example");
        CHECK(r.status == 403);
        web_response_done(&r);
        r = ask(api, "POST", "/api/setup", body, NULL, NULL, "https://gw.example:8443");
        CHECK(r.status == 200 && r.set_cookie && r.body);
        if (r.set_cookie && r.body) {
                CHECK(strstr(r.set_cookie, "; HttpOnly; Secure; SameSite=Strict; Path=/"));
                snprintf(cookie, sizeof cookie, "a=b; %.*s", (int)strcspn(r.set_cookie, ";"), r.set_cookie);
                j = json_loads(r.body, 0, NULL);
                snprintf(csrf, sizeof csrf, "%s", json_string_value(json_object_get(j, "csrf_token")) ?: "");
                json_decref(j);
        }
        web_response_done(&r);
        CHECK(status_of(api, "POST", "/api/setup", body, NULL, NULL) == 409);
        CHECK(status_of(api, "GET", "/api/status", NULL, cookie, NULL) == 200);
        CHECK(status_of(api, "GET", "/api/unknown", NULL, cookie, NULL) == 404);
        CHECK(status_of(api, "GET", "/api/events", NULL, cookie, NULL) == 1000 + WEB_ACTION_EVENTS);
        /* No test_alarm callback here: 503 once the checks pass. */
        CHECK(status_of(api, "POST", "/api/test-alarm", "{}", cookie, NULL) == 403);
        CHECK(status_of(api, "POST", "/api/test-alarm", "{}", cookie, "0") == 403);
        CHECK(status_of(api, "POST", "/api/test-alarm", "{}", cookie, csrf) == 503);
        CHECK(status_of(api, "POST", "/api/test-alarm", "{\"message\":", cookie, csrf) == 400);

        /* Headers only: refused before the body is read, or told to read it. */
        {
                WebRequest q = {.method = "POST",
                                .path = "/api/test-alarm",
                                .host = "gw.example:8443",
                                .content_type = "text/plain",
                                .cookie = cookie,
                                .csrf = csrf,
                                .client = "192.0.2.7",
                                .headers_only = true,
                                .now_usec = 100 * SEC};
                CHECK(web_api_handle(api, &q, &r) == 0 && r.status == 415);
                web_response_done(&r);
                q.content_type = "application/json";
                CHECK(web_api_handle(api, &q, &r) == 0 && r.action == WEB_ACTION_CONTINUE);
                web_response_done(&r);
                q.body_too_large = true;
                CHECK(web_api_handle(api, &q, &r) == 0 && r.status == 413);
                web_response_done(&r);
        }

        CHECK(status_of(api, "POST", "/api/login", "{\"password\":\"0123456789\"}", NULL, NULL) == 200);
        CHECK(status_of(api, "POST", "/api/login", "{\"password\":\"wrong one!\"}", NULL, NULL) == 401);
        r = ask(api, "POST", "/api/logout", NULL, cookie, csrf, NULL);
        CHECK(r.status == 204 && r.set_cookie && strstr(r.set_cookie, "Max-Age=0"));
        web_response_done(&r);
        CHECK(status_of(api, "GET", "/api/status", NULL, cookie, NULL) == 401);
        CHECK(status_of(api, "GET", "/", NULL, NULL, NULL) == 200);
        CHECK(status_of(api, "GET", "/setup", NULL, NULL, NULL) == 303);
        CHECK(status_of(api, "GET", "/nothing.css", NULL, NULL, NULL) == 404);

        r = ask(api, "POST", "/api/login", "{\"password\":\"wrong one!\"}", NULL, NULL, NULL);
        web_response_done(&r);
        for (int i = 0; i < 3; i++)
                CHECK(status_of(api, "POST", "/api/login", "{\"password\":\"wrong one!\"}", NULL, NULL) ==
                      401);
        r = ask(api, "POST", "/api/login", "{\"password\":\"0123456789\"}", NULL, NULL, NULL);
        CHECK(r.status == 429 && r.retry_after_sec == 1);
        web_response_done(&r);
        web_api_free(api);
out:
        if (d)
                remove_dir(d);
        free(d);
}

static void test_cert(void)
{
        char *d = temp_dir(), *err = NULL, p[512];
        WebCert c = {}, again = {};
        struct stat st;

        CHECK(d);
        if (!d)
                return;
        CHECK(web_cert_load(NULL, NULL, d, "homecare-gw test", &c, &err) == 0);
        CHECK(c.made && c.cert_pem && c.key_pem && strlen(c.fingerprint) == 95);
        snprintf(p, sizeof p, "%s/web.key", d);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
        /* The next start reads the same pair. */
        CHECK(web_cert_load(NULL, NULL, d, "homecare-gw test", &again, &err) == 0);
        CHECK(!again.made && streq(again.fingerprint, c.fingerprint));
        web_cert_done(&again);
        /* A given key that does not fit its certificate is refused, and said. */
        {
                char other[512], cert[512];
                WebCert x = {};
                char *d2 = temp_dir();
                CHECK(d2 && web_cert_load(NULL, NULL, d2, "other", &x, NULL) == 0);
                snprintf(other, sizeof other, "%s/web.key", d2);
                snprintf(cert, sizeof cert, "%s/web.pem", d);
                CHECK(web_cert_load(cert, other, NULL, NULL, &again, &err) == -EBADMSG);
                CHECK(err && strstr(err, "the key does not belong to the certificate"));
                free(err);
                err = NULL;
                web_cert_done(&x);
                if (d2)
                        remove_dir(d2);
                free(d2);
        }
        CHECK(web_cert_load("/nonexistent/web.pem", "/nonexistent/web.key", d, NULL, &again, &err) ==
              -ENOENT);
        CHECK(err && strstr(err, "/nonexistent/web.pem"));
        free(err);
        web_cert_done(&c);
        remove_dir(d);
        free(d);
}

TEST_MAIN(TEST(test_config), TEST(test_lockout), TEST(test_files), TEST(test_sessions), TEST(test_parsers),
          TEST(test_api), TEST(test_cert))
