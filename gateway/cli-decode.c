#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/macro.h"
#include "gateway/clock.h"
#include "gateway/cli-decode.h"
#include "gateway/encode.h"
#include "sensors/bthome.h"
#include "sensors/profile.h"

#define PAYLOAD_MAX 512

int parse_hex(const char *s, unsigned char *out, size_t size)
{
        size_t n = 0;
        while (*s) {
                int hi, lo;
                if (*s == ' ' || *s == ':' || *s == '-' || *s == '\t') {
                        s++;
                        continue;
                }
                hi = unhexchar((unsigned char)s[0]);
                lo = hi < 0 ? -1 : unhexchar((unsigned char)s[1]);
                if (hi < 0 || lo < 0 || n >= size)
                        return -EINVAL;
                out[n++] = (unsigned char)(hi << 4 | lo);
                s += 2;
        }
        return (int)n;
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "homecare-gw decode: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 2;
}

static void usage(FILE *f)
{
        char names[256];

        fprintf(
            f,
            "Usage: homecare-gw decode PROFILE HEX... [--key HEX --mac AA:BB:CC:DD:EE:FF] [--last-counter "
            "N]\n"
            "PROFILE: %s (as [Sensor] Type= takes them)\n"
            "HEX: the characteristic value, or for bthome the service data after the UUID;\n"
            "     spaces and colons are allowed, and several arguments are joined.\n"
            "Prints one JSON object per reading or event. Exit status 2 for malformed or refused input.\n",
            profile_names_list(", ", names, sizeof names));
}

int cli_decode(int argc, char *argv[])
{
        static const struct option options[] = {
            {"key", required_argument, NULL, 'k'},
            {"mac", required_argument, NULL, 'm'},
            {"last-counter", required_argument, NULL, 'l'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        unsigned char payload[PAYLOAD_MAX], key[16], mac[6] = {};
        const char *key_arg = NULL, *mac_arg = NULL, *counter_arg = NULL;
        size_t len = 0;
        BthomeState state = {};
        DecodeContext ctx = decode_context_now();
        Decoded *out;
        const ProfileInfo *info;
        Profile p;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_arg = optarg;
                        break;
                case 'm':
                        mac_arg = optarg;
                        break;
                case 'l':
                        counter_arg = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        if (profile_from_name(argv[optind], &p) < 0)
                return fail("unknown profile '%s' (see homecare-gw decode --help)", argv[optind]);
        info = profile_info(p);
        if (++optind >= argc)
                return fail("%s: no payload given", profile_name(p));
        for (; optind < argc; optind++) {
                r = parse_hex(argv[optind], payload + len, sizeof payload - len);
                if (r < 0)
                        return fail(
                            "bad hex '%s': pairs of hex digits, optionally separated by spaces or colons",
                            argv[optind]);
                len += (size_t)r;
        }
        if (info->transport != PROFILE_ADVERTISEMENT && (key_arg || mac_arg || counter_arg))
                return fail("--key, --mac and --last-counter are for bthome only, not %s", profile_name(p));
        if (key_arg && parse_key(key_arg, key) < 0)
                return fail("bad key '%s': 32 hex digits", key_arg);
        if (key_arg && !mac_arg)
                return fail("%s", "--key needs --mac: the device address is part of the nonce");
        if (mac_arg && parse_mac(mac_arg, mac) < 0)
                return fail("bad address '%s': AA:BB:CC:DD:EE:FF", mac_arg);
        if (counter_arg) {
                char *end;
                unsigned long long v;
                errno = 0;
                v = strtoull(counter_arg, &end, 0);
                if (errno || *end || end == counter_arg || v > UINT32_MAX)
                        return fail("bad counter '%s'", counter_arg);
                state.has_counter = true;
                state.counter = (uint32_t)v;
        }

        out = calloc(1, sizeof *out);
        if (!out)
                return fail("%s", "out of memory");
        switch (info->transport) {
        case PROFILE_ADVERTISEMENT:
                r = info->decode_advertisement(payload, len, key_arg ? key : NULL, mac, &ctx, &state, out);
                break;
        case PROFILE_GATT:
                r = info->decode_gatt(payload, len, &ctx, out);
                break;
        }
        if (r < 0) {
                fprintf(stderr, "homecare-gw decode: %s: %s\n", profile_name(p), out->error);
                free(out);
                return 2;
        }
        for (size_t i = 0; i < out->n_readings; i++) {
                size_t n;
                char *s = encode_reading(&out->readings[i], &n);
                if (s)
                        puts(s);
                free(s);
        }
        for (size_t i = 0; i < out->n_events; i++) {
                size_t n;
                char *s = encode_event(&out->events[i], &n);
                if (s)
                        puts(s);
                free(s);
        }
        free(out);
        return 0;
}
