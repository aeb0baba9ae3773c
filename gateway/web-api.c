#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/timefmt.h"
#include "gateway/clock.h"
#include "gateway/web-api.h"
#include "web/assets.h"

struct WebApi {
        WebApiOptions o;
        char *state_dir;
        WebAuth *auth;
        char fingerprint[128]; /* empty: none */
};

/* What a route needs and who handles it. */
typedef struct Route Route;
typedef int (*route_fn)(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret);
struct Route {
        const char *path;
        const char *method;
        bool public; /* answered without a session */
        route_fn handle;
};

void web_response_done(WebResponse *r)
{
        free(r->body);
        free(r->set_cookie);
        *r = (WebResponse){};
}

/* ---- answers ---- */

/* Sets body to j's compact text (j's reference is taken). -ENOMEM if either is missing. */
static int respond_json(WebResponse *ret, unsigned status, json_t *j)
{
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

        json_decref(j);
        if (!s)
                return -ENOMEM;
        ret->action = WEB_ACTION_RESPOND;
        ret->status = status;
        ret->content_type = "application/json";
        free(ret->body);
        ret->body = s;
        ret->size = strlen(s);
        return 0;
}

static int respond_error(WebResponse *ret, unsigned status, const char *message)
{
        return respond_json(ret, status, json_pack("{s:s}", "error", message));
}

static int respond_empty(WebResponse *ret, unsigned status)
{
        ret->action = WEB_ACTION_RESPOND;
        ret->status = status;
        return 0;
}

/* ---- pure helpers ---- */

bool web_cookie_get(const char *header, const char *name, char *buf, size_t size)
{
        size_t nlen = strlen(name);

        if (!header)
                return false;
        for (const char *p = header; *p;) {
                size_t len;
                while (*p == ' ' || *p == '\t' || *p == ';')
                        p++;
                len = strcspn(p, ";");
                if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
                        const char *v = p + nlen + 1;
                        size_t vlen = len - nlen - 1;
                        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                                vlen--;
                        if (vlen >= size)
                                return false;
                        memcpy(buf, v, vlen);
                        buf[vlen] = '\0';
                        return true;
                }
                p += len;
        }
        return false;
}

bool web_content_type_is_json(const char *value)
{
        static const char json[] = "application/json";
        size_t n = sizeof json - 1;

        if (!value)
                return false;
        while (*value == ' ')
                value++;
        if (strncasecmp(value, json, n) != 0)
                return false;
        value += n;
        while (*value == ' ')
                value++;
        return *value == '\0' || *value == ';';
}

/* Whether the Origin header names this page: the scheme it is served with and the Host asked for.
 * With Plain=yes the page is usually behind a proxy that speaks HTTPS, so either scheme will do. */
static bool origin_is_own(const WebApi *api, const WebRequest *req)
{
        const char *rest;

        if (!req->host || !req->host[0])
                return false;
        if (strncmp(req->origin, "https://", 8) == 0 && !api->o.plain)
                rest = req->origin + 8;
        else if (strncmp(req->origin, "https://", 8) == 0)
                rest = req->origin + 8;
        else if (strncmp(req->origin, "http://", 7) == 0 && api->o.plain)
                rest = req->origin + 7;
        else
                return false;
        return strcasecmp(rest, req->host) == 0;
}

/* ---- JSON bodies ---- */

/* The body as a JSON object into *ret (a new reference), or a 400 in resp naming what is wrong. */
static int parse_body(const WebRequest *req, json_t **ret, WebResponse *resp)
{
        json_error_t e;
        json_t *j;
        char msg[256];

        if (req->body_len == 0)
                return respond_error(resp, 400, "the body must be a JSON object") ?: -EBADMSG;
        j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", e.line, e.column,
                         e.text);
                return respond_error(resp, 400, msg) ?: -EBADMSG;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                return respond_error(resp, 400, "the body must be a JSON object") ?: -EBADMSG;
        }
        *ret = j;
        return 0;
}

/* The string field key of j (borrowed from j), or a 400 naming it. NUL bytes inside are refused. */
static int string_field(json_t *j, const char *key, bool required, const char **ret, WebResponse *resp)
{
        json_t *v = json_object_get(j, key);
        char msg[128];

        if (!v && !required) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
                snprintf(msg, sizeof msg, "\"%s\" must be %s", key,
                         v ? "a string without NUL characters" : "given, as a string");
                return respond_error(resp, 400, msg) ?: -EBADMSG;
        }
        *ret = json_string_value(v);
        return 0;
}

/* jansson's copy of a secret is wiped before it is freed. */
static void wipe_field(json_t *j, const char *key)
{
        json_t *v = json_object_get(j, key);
        if (json_is_string(v))
                explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

static void json_wipe_decref(json_t **j)
{
        if (!*j)
                return;
        wipe_field(*j, "password");
        wipe_field(*j, "setup_code");
        json_decref(*j);
        *j = NULL;
}

/* ---- sessions ---- */

static int start_session(WebApi *api, const WebRequest *req, WebResponse *ret)
{
        char token[WEB_TOKEN_MAX], csrf[WEB_TOKEN_MAX];
        int r;

        r = web_auth_login(api->auth, req->now_usec, token, csrf);
        if (r < 0)
                return respond_error(ret, 500, "no random numbers for a session");
        r = asprintf(&ret->set_cookie, WEB_COOKIE_NAME "=%s; HttpOnly%s; SameSite=Strict; Path=/", token,
                     api->o.plain ? "" : "; Secure");
        explicit_bzero(token, sizeof token);
        if (r < 0) {
                ret->set_cookie = NULL;
                return -ENOMEM;
        }
        r = respond_json(ret, 200, json_pack("{s:s}", "csrf_token", csrf));
        explicit_bzero(csrf, sizeof csrf);
        return r;
}

/* A try (login, setup code) is refused while its address or everybody is locked out. */
static bool locked_out(WebApi *api, const WebRequest *req, WebResponse *ret, int *r)
{
        uint64_t wait = 0;

        if (web_auth_try_allowed(api->auth, req->client, req->now_usec, &wait))
                return false;
        ret->retry_after_sec = (unsigned)((wait + 999999) / 1000000);
        *r = respond_error(ret, 429, "too many failed tries: wait and try again");
        return true;
}

static void try_failed(WebApi *api, const WebRequest *req, const char *what)
{
        uint64_t wait = web_auth_try_failed(api->auth, req->client, req->now_usec);

        log_warning("Technician's page: %s from %s.", what, req->client);
        if (wait > 0)
                log_warning("Technician's page: tries from %s are locked out for %llu s after repeated "
                            "failures.",
                            req->client, (unsigned long long)((wait + 999999) / 1000000));
}

/* ---- the routes ---- */

static int get_setup(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        return respond_json(ret, 200, json_pack("{s:b}", "needed", !web_auth_refresh(api->auth)));
}

static int post_setup(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        json_t *j _cleanup_(json_wipe_decref) = NULL;
        const char *code, *password, *problem;
        int r;

        if (web_auth_refresh(api->auth))
                return respond_error(ret, 409,
                                     "a password is set already: log in, or reset it on the gateway");
        if (locked_out(api, req, ret, &r))
                return r;
        if ((r = parse_body(req, &j, ret)) < 0 ||
            (r = string_field(j, "setup_code", true, &code, ret)) < 0 ||
            (r = string_field(j, "password", true, &password, ret)) < 0)
                return r == -EBADMSG ? 0 : r;
        if (!web_setup_code_matches(api->state_dir, code)) {
                try_failed(api, req, "wrong setup code");
                return respond_error(ret, 403, "wrong setup code");
        }
        problem = web_password_problem(password);
        if (problem)
                return respond_error(ret, 400, problem);
        r = web_password_set(api->state_dir, password);
        if (r < 0) {
                log_error_errno(r, "Technician's page: failed to store the password in %s: %m",
                                api->state_dir);
                return respond_error(ret, 500, "the password could not be stored");
        }
        (void)web_auth_refresh(api->auth); /* the new file: no session from before it stays */
        web_auth_try_succeeded(api->auth, req->client);
        log_notice("Technician's page: password set with the setup code from %s; the code is spent.",
                   req->client);
        return start_session(api, req, ret);
}

static int post_login(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        json_t *j _cleanup_(json_wipe_decref) = NULL;
        const char *password;
        int r;

        if (locked_out(api, req, ret, &r))
                return r;
        if ((r = parse_body(req, &j, ret)) < 0 ||
            (r = string_field(j, "password", true, &password, ret)) < 0)
                return r == -EBADMSG ? 0 : r;
        if (!web_auth_refresh(api->auth))
                return respond_error(ret, 409, "no password is set yet: set one with the setup code");
        r = strlen(password) > WEB_PASSWORD_MAX ? -EACCES : web_password_verify(api->state_dir, password);
        if (r == -EACCES) {
                try_failed(api, req, "failed login");
                return respond_error(ret, 401, "wrong password");
        }
        if (r < 0) {
                log_error_errno(r, "Technician's page: failed to check the password against %s: %m",
                                api->state_dir);
                return respond_error(ret, 500, "the stored password could not be read");
        }
        web_auth_try_succeeded(api->auth, req->client);
        log_notice("Technician's page: login from %s.", req->client);
        return start_session(api, req, ret);
}

static int post_logout(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        web_auth_logout(api->auth, token);
        log_info("Technician's page: logout from %s.", req->client);
        ret->set_cookie = strdup(WEB_COOKIE_NAME "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
        if (!ret->set_cookie)
                return -ENOMEM;
        return respond_empty(ret, 204);
}

static int get_status(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        return respond_json(ret, 200, web_api_status(api));
}

static int get_events(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        ret->action = WEB_ACTION_EVENTS;
        ret->status = 200;
        ret->content_type = "text/event-stream";
        return 0;
}

static int post_test_alarm(WebApi *api, const WebRequest *req, const char *token, WebResponse *ret)
{
        json_t *j _cleanup_(json_wipe_decref) = NULL;
        _cleanup_free_ char *error = NULL;
        const char *message = NULL;
        unsigned wait = 0;
        int r;

        if (req->body_len > 0 && ((r = parse_body(req, &j, ret)) < 0 ||
                                  (r = string_field(j, "message", false, &message, ret)) < 0))
                return r == -EBADMSG ? 0 : r;
        if (message && strlen(message) > 256)
                return respond_error(ret, 400, "\"message\" is longer than 256 bytes");
        if (!api->o.test_alarm)
                return respond_error(ret, 503, "the alarm path is not running");
        r = api->o.test_alarm(api->o.userdata, message ?: "", ret->alert_id, &ret->seq, &wait, &error);
        if (r == -ENOMEM)
                return r;
        if (r == -EBUSY) {
                ret->retry_after_sec = wait;
                return respond_error(ret, 429, error ?: "test alarms are rate-limited");
        }
        if (r < 0)
                return respond_error(ret, 503, error ?: "the test alarm could not be raised");
        ret->action = WEB_ACTION_AWAIT_ACK;
        ret->status = 200;
        return 0;
}

static const Route routes[] = {
    {"/api/setup", "GET", true, get_setup},
    {"/api/setup", "POST", true, post_setup},
    {"/api/login", "POST", true, post_login},
    {"/api/logout", "POST", false, post_logout},
    {"/api/status", "GET", false, get_status},
    {"/api/events", "GET", false, get_events},
    {"/api/test-alarm", "POST", false, post_test_alarm},
};

/* The route of path and method; NULL with *ret_allow set when the path exists with another method,
 * NULL with it NULL when the path is unknown. */
static const Route *find_route(const char *path, const char *method, const char **ret_allow)
{
        *ret_allow = NULL;
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (!streq(routes[i].path, path))
                        continue;
                if (streq(routes[i].method, method))
                        return &routes[i];
                /* Each path has GET, POST or both. */
                *ret_allow = *ret_allow ? "GET, POST" : routes[i].method;
        }
        return NULL;
}

/* ---- pages ---- */

static bool is_page(const WebAsset *a)
{
        return strncmp(a->content_type, "text/html", 9) == 0;
}

/* A file of the page. Until a password exists every page but setup's sends the browser to setup;
 * the script, the style and the images are served to it. */
static int handle_asset(WebApi *api, const WebRequest *req, WebResponse *ret)
{
        const bool setup = streq(req->path, "/setup");
        const char *path = streq(req->path, "/") ? "/index.html" : req->path;
        const WebAsset *a;

        if (!streq(req->method, "GET") && !streq(req->method, "HEAD")) {
                ret->allow = "GET, HEAD";
                return respond_error(ret, 405, "method not allowed");
        }
        if (req->headers_only) {
                ret->action = WEB_ACTION_CONTINUE;
                return 0;
        }
        /* The setup page: its own file if the page has one, else the one page that asks /api/setup. */
        a = setup ? (web_asset_find("/setup.html") ?: web_asset_find("/index.html")) : web_asset_find(path);
        if (!a) {
                ret->content_type = "text/plain; charset=utf-8";
                ret->data = (const unsigned char *)"not found\n";
                ret->size = strlen("not found\n");
                return respond_empty(ret, 404);
        }
        if (is_page(a) || setup) {
                bool needed = !web_auth_refresh(api->auth);
                if (needed && !setup) {
                        ret->location = "/setup";
                        return respond_empty(ret, 303);
                }
                if (!needed && setup) {
                        ret->location = "/";
                        return respond_empty(ret, 303);
                }
        }
        ret->content_type = a->content_type;
        ret->data = a->data;
        ret->size = a->size;
        return respond_empty(ret, 200);
}

/* ---- the checks, then the handler ---- */

static int handle_api(WebApi *api, const WebRequest *req, WebResponse *ret)
{
        char token[WEB_TOKEN_MAX] = "";
        const char *allow;
        const Route *route = find_route(req->path, req->method, &allow);
        bool session, post = streq(req->method, "POST");

        ret->api = true;
        if (!route && allow) {
                ret->allow = allow;
                return respond_error(ret, 405, "method not allowed");
        }
        if (req->origin && !origin_is_own(api, req))
                return respond_error(ret, 403, "cross-origin request refused");
        if (req->body_too_large)
                return respond_error(ret, 413, "the body is larger than 64 KiB");
        if (post && (req->content_type || req->body_len > 0) && !web_content_type_is_json(req->content_type))
                return respond_error(ret, 415, "the body must be application/json");
        if (web_cookie_get(req->cookie, WEB_COOKIE_NAME, token, sizeof token))
                session = web_auth_session(api->auth, token, req->now_usec);
        else
                session = false;
        /* Unknown paths answer 401 too without a session: they tell nothing of what exists. */
        if (!session && !(route && route->public))
                return respond_error(ret, 401, "log in first");
        if (!route)
                return respond_error(ret, 404, "no such API path");
        if (session && post && !route->public && !web_auth_csrf_ok(api->auth, token, req->csrf))
                return respond_error(ret, 403, "missing or wrong X-CSRF-Token");
        if (req->headers_only) {
                ret->action = WEB_ACTION_CONTINUE;
                return 0;
        }
        return route->handle(api, req, token, ret);
}

int web_api_handle(WebApi *api, const WebRequest *req, WebResponse *ret)
{
        int r;

        assert(api && req && req->method && req->path && ret);
        *ret = (WebResponse){};
        /* The password file may have been replaced by `homecare-gw reset-password`. */
        (void)web_auth_refresh(api->auth);
        if (!req->client)
                return -EINVAL;
        if (strncmp(req->path, "/api/", 5) == 0)
                r = handle_api(api, req, ret);
        else
                r = handle_asset(api, req, ret);
        if (r < 0) {
                web_response_done(ret);
                ret->action = WEB_ACTION_RESPOND;
                ret->status = 500;
                ret->api = strncmp(req->path, "/api/", 5) == 0;
        }
        return r;
}

/* ---- status ---- */

/* What the state directory holds (its files, not below) and what its file system has free. */
static json_t *disk_json(const char *dir)
{
        struct statvfs vfs;
        uint64_t used = 0;
        DIR *d = opendir(dir);

        if (d) {
                struct dirent *de;
                struct stat st;
                while ((de = readdir(d)))
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                            S_ISREG(st.st_mode))
                                used += (uint64_t)st.st_blocks * 512;
                closedir(d);
        }
        if (statvfs(dir, &vfs) < 0)
                return json_pack("{s:I}", "used_bytes", (json_int_t)used);
        return json_pack("{s:I, s:I, s:I}", "used_bytes", (json_int_t)used, "free_bytes",
                         (json_int_t)((uint64_t)vfs.f_bavail * vfs.f_frsize), "size_bytes",
                         (json_int_t)((uint64_t)vfs.f_blocks * vfs.f_frsize));
}

json_t *web_api_status(WebApi *api)
{
        json_t *s = api->o.status ? api->o.status(api->o.userdata) : json_object();
        DecodeContext now = decode_context_now();
        json_t *web;
        int r = 0;

        if (!s)
                return NULL;
        r |= json_object_set_new(s, "clock",
                                 json_pack("{s:b}", "synchronized", now.now_quality == TIME_SYNCED));
        r |= json_object_set_new(s, "disk", disk_json(api->state_dir));
        /* Beside what status.c says of the page (its URL, why it is down): TLS and the fingerprint. */
        web = json_object_get(s, "web");
        if (!json_is_object(web)) {
                web = json_object();
                r |= json_object_set_new(s, "web", web);
        }
        r |= json_object_set_new(web, "tls", json_boolean(!api->o.plain));
        r |= json_object_set_new(web, "fingerprint",
                                 api->fingerprint[0] ? json_string(api->fingerprint) : json_null());
        if (r < 0) {
                json_decref(s);
                return NULL;
        }
        return s;
}

char *web_api_test_alarm_answer(const char *alert_id, bool acked, int64_t acked_at_usec)
{
        json_t *j = json_pack("{s:s, s:b}", "alert_id", alert_id, "acked", acked);
        char buf[RFC3339_MAX], *s;

        if (j && acked &&
            json_object_set_new(j, "acked_at", json_string(format_rfc3339(buf, acked_at_usec))) < 0)
                j = (json_decref(j), NULL);
        if (!j)
                return NULL;
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* ---- the object ---- */

int web_api_new(const WebApiOptions *o, WebApi **ret)
{
        WebApi *api = calloc(1, sizeof *api);
        int r;

        if (!api)
                return -ENOMEM;
        api->o = *o;
        api->state_dir = strdup(o->state_dir);
        api->o.state_dir = api->state_dir;
        if (!api->state_dir) {
                web_api_free(api);
                return -ENOMEM;
        }
        r = web_auth_new(o->state_dir, o->session_idle_usec, &api->auth);
        if (r < 0) {
                web_api_free(api);
                return r;
        }
        *ret = api;
        return 0;
}

WebApi *web_api_free(WebApi *api)
{
        if (!api)
                return NULL;
        web_auth_free(api->auth);
        free(api->state_dir);
        free(api);
        return NULL;
}

void web_api_set_options(WebApi *api, uint64_t session_idle_usec, bool plain)
{
        api->o.session_idle_usec = session_idle_usec;
        api->o.plain = plain;
        web_auth_set_idle(api->auth, session_idle_usec);
}

void web_api_set_fingerprint(WebApi *api, const char *fingerprint)
{
        snprintf(api->fingerprint, sizeof api->fingerprint, "%s", fingerprint ?: "");
}

WebAuth *web_api_auth(WebApi *api)
{
        return api->auth;
}
