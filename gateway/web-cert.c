#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/macro.h"
#include "gateway/clock.h"
#include "gateway/web-cert.h"

#define CERT_NAME "web.pem"
#define KEY_NAME "web.key"
#define VALID_DAYS (30 * 365)

static X509 *X509_free_null(X509 *x)
{
        X509_free(x);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free_null)

_printf_(3, 4) static int fail(char **reterr_error, int r, const char *fmt, ...)
{
        char msg[512], ssl[256] = "";
        unsigned long e = ERR_peek_last_error();
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (e)
                ERR_error_string_n(e, ssl, sizeof ssl);
        ERR_clear_error();
        if (reterr_error)
                (void)!asprintf(reterr_error, "%s%s%s", msg, ssl[0] ? ": " : "", ssl);
        return r;
}

/* The whole file as a string (it is small: a PEM certificate chain or key). */
static int read_text(const char *path, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0, cap = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;
                if (len + 4096 + 1 > cap) {
                        char *b;
                        if (cap > 1024 * 1024)
                                return -EFBIG;
                        cap = cap * 2 + 8192;
                        b = realloc(buf, cap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static void fingerprint_of(X509 *x, char ret[static WEB_FINGERPRINT_MAX])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        ret[0] = '\0';
        if (!X509_digest(x, EVP_sha256(), md, &n))
                return;
        for (unsigned i = 0; i < n && 3 * i + 3 <= WEB_FINGERPRINT_MAX; i++)
                snprintf(ret + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

/* Parses the PEM texts in c, checks that the key fits the certificate, and takes the fingerprint. */
static int check_pair(WebCert *c, const char *what, char **reterr_error)
{
        _cleanup_(X509_free_nullp) X509 *x = NULL;
        EVP_PKEY *k;
        BIO *b;
        int ok;

        b = BIO_new_mem_buf(c->cert_pem, -1);
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!x)
                return fail(reterr_error, -EBADMSG, "%s: no PEM certificate", what);
        b = BIO_new_mem_buf(c->key_pem, -1);
        k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!k)
                return fail(reterr_error, -EBADMSG,
                            "%s: no PEM private key (an encrypted key is not supported)", what);
        ok = X509_check_private_key(x, k);
        EVP_PKEY_free(k);
        if (!ok)
                return fail(reterr_error, -EBADMSG, "%s: the key does not belong to the certificate", what);
        fingerprint_of(x, c->fingerprint);
        return 0;
}

static int write_pem(const char *path, mode_t mode, const char *text)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(text);

        if (asprintf(&tmp, "%s.new", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0 ||
            rename(tmp, path) < 0) {
                int r = errno > 0 ? -errno : -EIO;
                (void)unlink(tmp);
                return r;
        }
        return 0;
}

static char *pem_of(int (*write_fn)(BIO *, const void *), const void *obj)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *s = NULL;
        long n;

        /* The BIO's data has no NUL: copied with one (not strndup(), which may read past it). */
        if (b && write_fn(b, obj) && (n = BIO_get_mem_data(b, &data)) > 0 && (s = malloc((size_t)n + 1))) {
                memcpy(s, data, (size_t)n);
                s[n] = '\0';
        }
        BIO_free(b);
        return s;
}

static int write_x509(BIO *b, const void *x)
{
        return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
        return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static int add_ext(X509 *x, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *e;
        int ok;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!e)
                return 0;
        ok = X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        return ok;
}

/* A new EC P-256 key and a self-signed certificate for it, as PEM texts in c. */
static int make_pair(WebCert *c, const char *common_name, char **reterr_error)
{
        _cleanup_(X509_free_nullp) X509 *x = NULL;
        EVP_PKEY *k = EVP_EC_gen("P-256");
        unsigned char serial[16];
        BIGNUM *bn = NULL;
        X509_NAME *name;
        time_t from;
        int ok;

        x = X509_new();
        if (!k || !x)
                goto fail;
        /* Valid from before any time the box may believe it is: a Raspberry Pi without a clock boots at
         * 1970 or at its last shutdown until NTP sets it, and the browser's clock is right. */
        from = (time_t)(CLOCK_EPOCH_USEC / 1000000) - 86400;
        if (time(NULL) < from)
                from = 0;
        ok = X509_set_version(x, 2) && RAND_bytes(serial, sizeof serial) == 1;
        serial[0] &= 0x7F; /* positive */
        ok = ok && (bn = BN_bin2bn(serial, sizeof serial, NULL)) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
        BN_free(bn);
        ok = ok && X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &from) &&
             X509_time_adj_ex(X509_getm_notAfter(x), VALID_DAYS, 0, &from) && X509_set_pubkey(x, k);
        name = X509_get_subject_name(x);
        ok = ok &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"homecare-gw", -1,
                                        -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1,
                                        -1, 0) &&
             X509_set_issuer_name(x, name) && add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, NID_ext_key_usage, "serverAuth") && X509_sign(x, k, EVP_sha256()) > 0;
        if (!ok)
                goto fail;
        c->cert_pem = pem_of(write_x509, x);
        c->key_pem = pem_of(write_key, k);
        EVP_PKEY_free(k);
        if (!c->cert_pem || !c->key_pem)
                return fail(reterr_error, -ENOMEM, "Out of memory");
        fingerprint_of(x, c->fingerprint);
        return 0;
fail:
        EVP_PKEY_free(k);
        return fail(reterr_error, -EINVAL, "Failed to make a self-signed certificate");
}

int web_cert_load(const char *cert_file, const char *key_file, const char *state_dir,
                  const char *common_name, WebCert *ret, char **reterr_error)
{
        _cleanup_free_ char *cpath = NULL, *kpath = NULL;
        WebCert c = {};
        int r;

        if (cert_file) {
                cpath = strdup(cert_file);
                kpath = strdup(key_file);
        } else if (asprintf(&cpath, "%s/" CERT_NAME, state_dir) < 0 ||
                   asprintf(&kpath, "%s/" KEY_NAME, state_dir) < 0)
                cpath = mfree(cpath);
        if (!cpath || !kpath)
                return fail(reterr_error, -ENOMEM, "Out of memory");

        r = read_text(cpath, &c.cert_pem);
        if (r == -ENOENT && !cert_file) {
                /* First start: make the pair. The key is written first, so that a certificate on disk
                 * always has its key beside it. */
                r = make_pair(&c, common_name, reterr_error);
                if (r < 0)
                        goto fail;
                const char *failed = kpath;
                r = write_pem(kpath, 0600, c.key_pem);
                if (r >= 0) {
                        failed = cpath;
                        r = write_pem(cpath, 0644, c.cert_pem);
                }
                if (r < 0) {
                        fail(reterr_error, r, "Failed to write %s: %s", failed, strerror(-r));
                        goto fail;
                }
                c.made = true;
        } else if (r < 0) {
                fail(reterr_error, r, "Failed to read %s: %s", cpath, strerror(-r));
                goto fail;
        } else {
                r = read_text(kpath, &c.key_pem);
                if (r < 0) {
                        fail(reterr_error, r, "Failed to read %s: %s", kpath, strerror(-r));
                        goto fail;
                }
                r = check_pair(&c, cpath, reterr_error);
                if (r < 0)
                        goto fail;
        }
        c.cert_path = TAKE_PTR(cpath);
        *ret = c;
        return 0;
fail:
        web_cert_done(&c);
        return r;
}

void web_cert_done(WebCert *c)
{
        if (c->key_pem)
                explicit_bzero(c->key_pem, strlen(c->key_pem));
        free(c->key_pem);
        free(c->cert_pem);
        free(c->cert_path);
        *c = (WebCert){};
}
