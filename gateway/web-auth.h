/* The technician's page: who may use it. First boot with a setup code, the password (yescrypt through
 * libcrypt), sessions with their CSRF tokens, and the growing delay after failed tries.
 *
 * On disk, in StateDirectory (both mode 0600, written .new, fsync, rename):
 *   web-setup-code  the code, "1234-5678-9012-3456" (16 digits, 53 bits), while no password is set
 *   web-password    the yescrypt hash of the password ("$y$..."), once set
 * The files are the truth: `homecare-gw reset-password` (another process) replaces the code and
 * removes the hash, and the running gateway sees it at the next request (web_auth_refresh()).
 *
 * Sessions live in memory only: a restart logs everybody out. Nothing here logs a password, a code or a
 * token; the caller logs who logged in, failed or was locked out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_SETUP_CODE_MAX 20   /* "dddd-dddd-dddd-dddd" and its NUL */
#define WEB_TOKEN_MAX 65        /* 256 bits as 64 hex digits, and the NUL */
#define WEB_PASSWORD_MIN 10     /* characters (code points), as the issue asks */
#define WEB_PASSWORD_MAX 1024   /* bytes: yescrypt takes more, nobody types more */
#define WEB_SESSIONS_MAX 8      /* the oldest goes when a ninth logs in */
#define WEB_LOCKOUT_FREE 5      /* failures from one address before the delay starts */
#define WEB_LOCKOUT_FREE_ALL 20 /* failures from all addresses together before it starts for all */
#define WEB_LOCKOUT_FIRST_USEC (1000ULL * 1000)
#define WEB_LOCKOUT_MAX_USEC (300ULL * 1000 * 1000)

/* ---- the growing delay: pure, time passed in ---- */

typedef struct Lockout {
        unsigned failures;   /* since the last success */
        uint64_t until_usec; /* no try before this (CLOCK_MONOTONIC); 0: none */
} Lockout;

/* Whether a try is allowed at now; if not, how long to wait (rounded up to whole seconds by the
 * caller) in *ret_wait_usec. */
bool lockout_allowed(const Lockout *l, uint64_t now_usec, uint64_t *ret_wait_usec);
/* A failed try at now: after `free_failures` failures each one waits, 1 s doubling up to 5 min.
 * Returns the wait it starts (0: none yet). */
uint64_t lockout_failed(Lockout *l, uint64_t now_usec, unsigned free_failures);
void lockout_reset(Lockout *l);

/* ---- the files ---- */

/* Whether StateDirectory dir holds a password. */
bool web_password_exists(const char *dir);
/* The setup code into ret (the caller's, WEB_SETUP_CODE_MAX bytes), made and stored first if there is
 * none yet (*ret_made says so). -EEXIST (nothing made) when a password is set: the code is spent. */
int web_setup_code_get(const char *dir, char ret[static WEB_SETUP_CODE_MAX], bool *ret_made);
/* Whether `given` (from outside, any length; spaces and dashes ignored) is the stored code. */
bool web_setup_code_matches(const char *dir, const char *given);
/* What is wrong with a new password (a static string), or NULL if it will do. */
const char *web_password_problem(const char *password);
/* Hashes password (yescrypt) and stores it; the setup code is removed (spent). 0 or a negative errno. */
int web_password_set(const char *dir, const char *password);
/* 0 if password is the stored one, -EACCES if not, -ENOENT if none is set, other errors. Takes as long
 * as yescrypt takes (tens of ms on a Pi): it runs in the loop, once per try, behind the lockout. */
int web_password_verify(const char *dir, const char *password);
/* `homecare-gw reset-password`: a new code replaces the old one, then the password is removed (in that
 * order, so that a crash in between leaves a gateway that can be set up). The new code in ret. */
int web_password_reset(const char *dir, char ret[static WEB_SETUP_CODE_MAX]);

/* ---- sessions and lockouts, in memory ---- */

typedef struct WebAuth WebAuth;

/* dir is copied. idle_usec: a session unused this long ends. The caller owns *ret (web_auth_free()). */
int web_auth_new(const char *dir, uint64_t idle_usec, WebAuth **ret);
WebAuth *web_auth_free(WebAuth *a);
void web_auth_set_idle(WebAuth *a, uint64_t idle_usec);
/* Looks at the password file again: when it appeared, changed or went away (a reset by another
 * process), every session ends. Returns whether a password exists now. */
bool web_auth_refresh(WebAuth *a);
const char *web_auth_dir(const WebAuth *a);

/* A new session at now (CLOCK_MONOTONIC): its cookie token and CSRF token into the caller's buffers. */
int web_auth_login(WebAuth *a, uint64_t now_usec, char ret_token[static WEB_TOKEN_MAX],
                   char ret_csrf[static WEB_TOKEN_MAX]);
/* The session of cookie token `token` (from outside; NULL: none) if it exists and is not idle past
 * its limit: true, and it counts as used at now. Its CSRF token is then compared by
 * web_auth_csrf_ok(). */
bool web_auth_session(WebAuth *a, const char *token, uint64_t now_usec);
/* Whether that session still exists at now, without counting as a use (an open event stream). */
bool web_auth_session_alive(WebAuth *a, const char *token, uint64_t now_usec);
bool web_auth_csrf_ok(WebAuth *a, const char *token, const char *csrf);
void web_auth_logout(WebAuth *a, const char *token);
size_t web_auth_sessions(const WebAuth *a);

/* A login or setup try from address addr (text, copied): allowed, or the wait in *ret_wait_usec. */
bool web_auth_try_allowed(WebAuth *a, const char *addr, uint64_t now_usec, uint64_t *ret_wait_usec);
/* The try failed: returns the wait it starts for that address (0: none yet). */
uint64_t web_auth_try_failed(WebAuth *a, const char *addr, uint64_t now_usec);
/* The try succeeded: the address's count and the overall one start again. */
void web_auth_try_succeeded(WebAuth *a, const char *addr);
