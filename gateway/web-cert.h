/* The page's TLS certificate: the one given (CertFile=, KeyFile=), or a self-signed one the gateway
 * makes on first start in StateDirectory (web.pem, web.key: an EC P-256 key, mode 0600), so that the
 * page is HTTPS from the first boot. Its SHA-256 fingerprint is what the technician compares with the
 * label before trusting the page. */
#pragma once

#include <stdbool.h>

#define WEB_FINGERPRINT_MAX 96 /* 32 bytes as "AB:CD:..." and the NUL */

typedef struct WebCert {
        char *cert_pem;                        /* the certificate (chain) as PEM text */
        char *key_pem;                         /* the private key as PEM text */
        char fingerprint[WEB_FINGERPRINT_MAX]; /* SHA-256 of the (first) certificate, "AB:CD:..." */
        char *cert_path;                       /* where it was read from */
        bool made;                             /* made now (first start) */
} WebCert;

/* cert_file and key_file: both given, or both NULL for the self-signed pair in state_dir (made when
 * missing; common_name goes in its subject). On success the caller owns *ret (web_cert_done()). On
 * failure a negative errno and a malloc'd message in *reterr_error (the caller frees it). */
int web_cert_load(const char *cert_file, const char *key_file, const char *state_dir,
                  const char *common_name, WebCert *ret, char **reterr_error);
/* Frees what web_cert_load() put in c (the key is wiped first). Takes a zeroed WebCert. */
void web_cert_done(WebCert *c);
