#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/macro.h"
#include "gateway/web-auth.h"

#define SETUP_CODE_FILE "web-setup-code"
#define PASSWORD_FILE "web-password"
#define LOCKOUT_ADDRESSES 64 /* addresses remembered; the one whose delay ends first makes room */

/* ---- the growing delay ---- */

bool lockout_allowed(const Lockout *l, uint64_t now_usec, uint64_t *ret_wait_usec)
{
        if (l->until_usec <= now_usec)
                return true;
        *ret_wait_usec = l->until_usec - now_usec;
        return false;
}

uint64_t lockout_failed(Lockout *l, uint64_t now_usec, unsigned free_failures)
{
        uint64_t wait = WEB_LOCKOUT_FIRST_USEC;

        if (l->failures < UINT32_MAX)
                l->failures++;
        if (l->failures < free_failures)
                return 0;
        for (unsigned i = free_failures; i < l->failures && wait < WEB_LOCKOUT_MAX_USEC; i++)
                wait *= 2;
        if (wait > WEB_LOCKOUT_MAX_USEC)
                wait = WEB_LOCKOUT_MAX_USEC;
        l->until_usec = now_usec + wait;
        return wait;
}

void lockout_reset(Lockout *l)
{
        *l = (Lockout){};
}

/* ---- files ---- */

static char *path_in(const char *dir, const char *name)
{
        char *p = NULL;
        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* Writes text to dir/name atomically with mode 0600 (.new, fsync, rename, fsync of the directory).
 * As root (reset-password on the box), the file goes to the directory's owner, who runs the gateway. */
static int write_secret(const char *dir, const char *name, const char *text)
{
        _cleanup_free_ char *path = path_in(dir, name), *tmp = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        size_t len = strlen(text);
        struct stat st;

        if (!path || asprintf(&tmp, "%s.new", path) < 0)
                return -ENOMEM;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (geteuid() == 0 && fstat(dfd, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) < 0)
                goto fail;
        if (fchmod(fd, 0600) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
                goto fail;
        if (rename(tmp, path) < 0)
                goto fail;
        (void)fsync(dfd);
        return 0;
fail:;
        int r = errno > 0 ? -errno : -EIO;
        (void)unlink(tmp);
        return r;
}

/* The first line of dir/name into buf (size bytes), without its newline. */
static int read_line(const char *dir, const char *name, char *buf, size_t size)
{
        _cleanup_free_ char *path = path_in(dir, name);
        FILE *f;
        bool ok;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        ok = fgets(buf, (int)size, f) != NULL;
        fclose(f);
        if (!ok)
                return -ENODATA;
        buf[strcspn(buf, "\r\n")] = '\0';
        return 0;
}

bool web_password_exists(const char *dir)
{
        _cleanup_free_ char *path = path_in(dir, PASSWORD_FILE);
        return path && access(path, F_OK) == 0;
}

/* 16 random digits in four groups: easy to read aloud and to type on a phone. */
static int make_code(char ret[static WEB_SETUP_CODE_MAX])
{
        char digits[16];
        size_t n = 0;

        while (n < sizeof digits) {
                unsigned char b[32];
                if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
                        return -errno;
                for (size_t i = 0; i < sizeof b && n < sizeof digits; i++)
                        if (b[i] < 250) /* 250 = 25 * 10: every digit equally likely */
                                digits[n++] = (char)('0' + b[i] % 10);
                explicit_bzero(b, sizeof b);
        }
        for (size_t g = 0; g < 4; g++) {
                memcpy(ret + 5 * g, digits + 4 * g, 4);
                ret[5 * g + 4] = g < 3 ? '-' : '\0';
        }
        explicit_bzero(digits, sizeof digits);
        return 0;
}

int web_setup_code_get(const char *dir, char ret[static WEB_SETUP_CODE_MAX], bool *ret_made)
{
        char code[WEB_SETUP_CODE_MAX];
        int r;

        if (web_password_exists(dir))
                return -EEXIST;
        r = read_line(dir, SETUP_CODE_FILE, code, sizeof code);
        if (r == 0 && strlen(code) == WEB_SETUP_CODE_MAX - 1) {
                memcpy(ret, code, sizeof code);
                if (ret_made)
                        *ret_made = false;
                return 0;
        }
        if (r < 0 && r != -ENOENT && r != -ENODATA)
                return r;
        r = make_code(code);
        if (r < 0)
                return r;
        r = write_secret(dir, SETUP_CODE_FILE, code);
        if (r < 0)
                return r;
        memcpy(ret, code, sizeof code);
        if (ret_made)
                *ret_made = true;
        return 0;
}

/* Only the digits count: "1234 5678-9012 3456" is the code too. */
static void digits_of(const char *s, char *buf, size_t size)
{
        size_t n = 0;
        for (; *s && n + 1 < size; s++)
                if (*s >= '0' && *s <= '9')
                        buf[n++] = *s;
                else if (*s != '-' && *s != ' ') { /* anything else: no match */
                        n = 0;
                        break;
                }
        buf[n] = '\0';
}

bool web_setup_code_matches(const char *dir, const char *given)
{
        char stored[WEB_SETUP_CODE_MAX], a[WEB_SETUP_CODE_MAX] = "", b[WEB_SETUP_CODE_MAX] = "";

        if (strlen(given) > 64 || read_line(dir, SETUP_CODE_FILE, stored, sizeof stored) < 0)
                return false;
        digits_of(stored, a, sizeof a);
        digits_of(given, b, sizeof b);
        return strlen(a) == 16 && strlen(b) == 16 && CRYPTO_memcmp(a, b, 16) == 0;
}

const char *web_password_problem(const char *password)
{
        size_t chars = 0, len = strlen(password);

        if (len > WEB_PASSWORD_MAX)
                return "the password is longer than 1024 bytes";
        for (const unsigned char *p = (const unsigned char *)password; *p; p++)
                if ((*p & 0xC0) != 0x80) /* not a continuation byte: a new character */
                        chars++;
        if (chars < WEB_PASSWORD_MIN)
                return "the password needs at least 10 characters";
        return NULL;
}

/* crypt_rn() with its large work area on the heap; hash of password with setting into ret (size). */
static int hash_with(const char *password, const char *setting, char *ret, size_t size)
{
        _cleanup_free_ struct crypt_data *data = calloc(1, sizeof *data);
        const char *h;

        if (!data)
                return -ENOMEM;
        h = crypt_rn(password, setting, data, (int)sizeof *data);
        if (!h || h[0] == '*' || strlen(h) >= size)
                return -EINVAL;
        memcpy(ret, h, strlen(h) + 1);
        return 0;
}

int web_password_set(const char *dir, const char *password)
{
        char salt[CRYPT_GENSALT_OUTPUT_SIZE], hash[CRYPT_OUTPUT_SIZE + 1];
        _cleanup_free_ char *line = NULL, *code = path_in(dir, SETUP_CODE_FILE);
        int r;

        if (!code)
                return -ENOMEM;
        /* "$y$", the default cost; libxcrypt takes the salt's random bytes from the kernel. */
        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
                return errno > 0 ? -errno : -EINVAL;
        r = hash_with(password, salt, hash, sizeof hash);
        if (r < 0)
                return r;
        if (asprintf(&line, "%s\n", hash) < 0)
                return -ENOMEM;
        r = write_secret(dir, PASSWORD_FILE, line);
        explicit_bzero(line, strlen(line));
        if (r < 0)
                return r;
        if (unlink(code) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int web_password_verify(const char *dir, const char *password)
{
        char stored[CRYPT_OUTPUT_SIZE + 1], hash[CRYPT_OUTPUT_SIZE + 1];
        int r;

        r = read_line(dir, PASSWORD_FILE, stored, sizeof stored);
        if (r < 0)
                return r;
        if (strncmp(stored, "$y$", 3) != 0)
                return -EBADMSG;
        r = hash_with(password, stored, hash, sizeof hash);
        if (r < 0)
                return r;
        if (strlen(hash) != strlen(stored) || CRYPTO_memcmp(hash, stored, strlen(stored)) != 0)
                return -EACCES;
        return 0;
}

int web_password_reset(const char *dir, char ret[static WEB_SETUP_CODE_MAX])
{
        _cleanup_free_ char *pw = path_in(dir, PASSWORD_FILE);
        char code[WEB_SETUP_CODE_MAX];
        int r;

        if (!pw)
                return -ENOMEM;
        r = make_code(code);
        if (r < 0)
                return r;
        r = write_secret(dir, SETUP_CODE_FILE, code);
        if (r < 0)
                return r;
        if (unlink(pw) < 0 && errno != ENOENT)
                return -errno;
        memcpy(ret, code, sizeof code);
        return 0;
}

/* ---- sessions and lockouts ---- */

typedef struct Session {
        char token[WEB_TOKEN_MAX]; /* empty: a free slot */
        char csrf[WEB_TOKEN_MAX];
        uint64_t last_used_usec;
} Session;

typedef struct AddressLockout {
        char addr[64]; /* empty: a free slot */
        Lockout lockout;
} AddressLockout;

struct WebAuth {
        char *dir;
        uint64_t idle_usec;
        Session sessions[WEB_SESSIONS_MAX];
        AddressLockout addresses[LOCKOUT_ADDRESSES];
        Lockout all;               /* every address together: many addresses cannot try more */
        struct stat password_stat; /* as last seen; st_ino 0: no file */
};

static int random_hex(char ret[static WEB_TOKEN_MAX])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char b[32];

        /* A session without a random token must not exist: a failure is an error, never a fallback. */
        if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
                return errno > 0 ? -errno : -EIO;
        for (size_t i = 0; i < sizeof b; i++) {
                ret[2 * i] = hex[b[i] >> 4];
                ret[2 * i + 1] = hex[b[i] & 15];
        }
        ret[64] = '\0';
        explicit_bzero(b, sizeof b);
        return 0;
}

int web_auth_new(const char *dir, uint64_t idle_usec, WebAuth **ret)
{
        WebAuth *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        a->dir = strdup(dir);
        if (!a->dir) {
                free(a);
                return -ENOMEM;
        }
        a->idle_usec = idle_usec;
        (void)web_auth_refresh(a);
        *ret = a;
        return 0;
}

WebAuth *web_auth_free(WebAuth *a)
{
        if (!a)
                return NULL;
        explicit_bzero(a->sessions, sizeof a->sessions);
        free(a->dir);
        free(a);
        return NULL;
}

void web_auth_set_idle(WebAuth *a, uint64_t idle_usec)
{
        a->idle_usec = idle_usec;
}

const char *web_auth_dir(const WebAuth *a)
{
        return a->dir;
}

bool web_auth_refresh(WebAuth *a)
{
        _cleanup_free_ char *path = path_in(a->dir, PASSWORD_FILE);
        struct stat st = {};

        if (!path || stat(path, &st) < 0)
                st = (struct stat){};
        if (st.st_ino != a->password_stat.st_ino || st.st_dev != a->password_stat.st_dev ||
            st.st_mtim.tv_sec != a->password_stat.st_mtim.tv_sec ||
            st.st_mtim.tv_nsec != a->password_stat.st_mtim.tv_nsec) {
                explicit_bzero(a->sessions, sizeof a->sessions);
                a->password_stat = st;
        }
        return st.st_ino != 0;
}

int web_auth_login(WebAuth *a, uint64_t now_usec, char ret_token[static WEB_TOKEN_MAX],
                   char ret_csrf[static WEB_TOKEN_MAX])
{
        Session *s = &a->sessions[0];

        /* A free slot, or the session used least recently. */
        for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
                if (!a->sessions[i].token[0]) {
                        s = &a->sessions[i];
                        break;
                }
                if (a->sessions[i].last_used_usec < s->last_used_usec)
                        s = &a->sessions[i];
        }
        if (random_hex(s->token) < 0 || random_hex(s->csrf) < 0) {
                explicit_bzero(s, sizeof *s);
                return -EIO;
        }
        s->last_used_usec = now_usec;
        memcpy(ret_token, s->token, WEB_TOKEN_MAX);
        memcpy(ret_csrf, s->csrf, WEB_TOKEN_MAX);
        return 0;
}

static Session *find_session(WebAuth *a, const char *token, uint64_t now_usec)
{
        if (!token || strlen(token) != WEB_TOKEN_MAX - 1)
                return NULL;
        for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
                Session *s = &a->sessions[i];
                if (!s->token[0] || CRYPTO_memcmp(s->token, token, WEB_TOKEN_MAX - 1) != 0)
                        continue;
                if (now_usec > s->last_used_usec + a->idle_usec) {
                        explicit_bzero(s, sizeof *s);
                        return NULL;
                }
                return s;
        }
        return NULL;
}

bool web_auth_session(WebAuth *a, const char *token, uint64_t now_usec)
{
        Session *s = find_session(a, token, now_usec);
        if (!s)
                return false;
        s->last_used_usec = now_usec;
        return true;
}

bool web_auth_session_alive(WebAuth *a, const char *token, uint64_t now_usec)
{
        return find_session(a, token, now_usec) != NULL;
}

bool web_auth_csrf_ok(WebAuth *a, const char *token, const char *csrf)
{
        /* Found by the token without regard to idleness: web_auth_session() has just judged that. */
        Session *s = find_session(a, token, 0);
        return s && csrf && strlen(csrf) == WEB_TOKEN_MAX - 1 &&
               CRYPTO_memcmp(s->csrf, csrf, WEB_TOKEN_MAX - 1) == 0;
}

void web_auth_logout(WebAuth *a, const char *token)
{
        Session *s = find_session(a, token, 0);
        if (s)
                explicit_bzero(s, sizeof *s);
}

size_t web_auth_sessions(const WebAuth *a)
{
        size_t n = 0;
        for (size_t i = 0; i < WEB_SESSIONS_MAX; i++)
                n += a->sessions[i].token[0] != '\0';
        return n;
}

/* The entry of addr; with make, a new one (taking the slot whose delay ended first). */
static AddressLockout *address(WebAuth *a, const char *addr, bool make)
{
        AddressLockout *oldest = &a->addresses[0];

        for (size_t i = 0; i < LOCKOUT_ADDRESSES; i++) {
                AddressLockout *e = &a->addresses[i];
                if (e->addr[0] && streq(e->addr, addr))
                        return e;
                if (!e->addr[0] || (oldest->addr[0] && e->lockout.until_usec < oldest->lockout.until_usec))
                        oldest = e;
        }
        if (!make)
                return NULL;
        *oldest = (AddressLockout){};
        snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
        return oldest;
}

bool web_auth_try_allowed(WebAuth *a, const char *addr, uint64_t now_usec, uint64_t *ret_wait_usec)
{
        AddressLockout *e = address(a, addr, false);
        uint64_t wait = 0, w = 0;

        if (!lockout_allowed(&a->all, now_usec, &w))
                wait = w;
        if (e && !lockout_allowed(&e->lockout, now_usec, &w) && w > wait)
                wait = w;
        if (wait == 0)
                return true;
        *ret_wait_usec = wait;
        return false;
}

uint64_t web_auth_try_failed(WebAuth *a, const char *addr, uint64_t now_usec)
{
        AddressLockout *e = address(a, addr, true);
        uint64_t mine = lockout_failed(&e->lockout, now_usec, WEB_LOCKOUT_FREE),
                 all = lockout_failed(&a->all, now_usec, WEB_LOCKOUT_FREE_ALL);
        return mine > all ? mine : all;
}

void web_auth_try_succeeded(WebAuth *a, const char *addr)
{
        AddressLockout *e = address(a, addr, false);
        if (e)
                *e = (AddressLockout){};
        lockout_reset(&a->all);
}
