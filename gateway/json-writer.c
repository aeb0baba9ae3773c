#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/json-writer.h"

void json_writer_init(JsonWriter *w)
{
        *w = (JsonWriter){};
}

void json_writer_done(JsonWriter *w)
{
        free(w->buf);
        *w = (JsonWriter){};
}

char *json_writer_steal(JsonWriter *w, size_t *ret_len)
{
        char *s = w->failed ? NULL : w->buf;
        if (s && ret_len)
                *ret_len = w->len;
        if (!s)
                free(w->buf);
        *w = (JsonWriter){};
        return s;
}

static void put(JsonWriter *w, const char *s, size_t n)
{
        if (w->failed)
                return;
        if (w->len + n + 1 > w->size) {
                size_t size = w->size ? w->size : 256;
                while (w->len + n + 1 > size)
                        size *= 2;
                char *b = realloc(w->buf, size);
                if (!b) {
                        w->failed = true;
                        return;
                }
                w->buf = b;
                w->size = size;
        }
        memcpy(w->buf + w->len, s, n);
        w->len += n;
        w->buf[w->len] = '\0';
}

static void value_prefix(JsonWriter *w)
{
        if (w->comma)
                put(w, ",", 1);
        w->comma = true;
}

void jw_object_begin(JsonWriter *w)
{
        value_prefix(w);
        put(w, "{", 1);
        w->comma = false;
}

void jw_object_end(JsonWriter *w)
{
        put(w, "}", 1);
        w->comma = true;
}

void jw_array_begin(JsonWriter *w)
{
        value_prefix(w);
        put(w, "[", 1);
        w->comma = false;
}

void jw_array_end(JsonWriter *w)
{
        put(w, "]", 1);
        w->comma = true;
}

static void put_escaped(JsonWriter *w, const char *s)
{
        put(w, "\"", 1);
        for (const char *run = s;; s++) {
                unsigned char c = (unsigned char)*s;
                if (c != '\0' && c >= 0x20 && c != '"' && c != '\\')
                        continue;
                put(w, run, (size_t)(s - run));
                if (c == '\0')
                        break;
                char esc[8];
                switch (c) {
                case '"':
                        put(w, "\\\"", 2);
                        break;
                case '\\':
                        put(w, "\\\\", 2);
                        break;
                case '\n':
                        put(w, "\\n", 2);
                        break;
                case '\t':
                        put(w, "\\t", 2);
                        break;
                case '\r':
                        put(w, "\\r", 2);
                        break;
                default:
                        snprintf(esc, sizeof esc, "\\u%04x", c);
                        put(w, esc, 6);
                }
                run = s + 1;
        }
        put(w, "\"", 1);
}

void jw_key(JsonWriter *w, const char *key)
{
        value_prefix(w);
        put_escaped(w, key);
        put(w, ":", 1);
        w->comma = false;
}

void jw_string(JsonWriter *w, const char *s)
{
        value_prefix(w);
        put_escaped(w, s);
}

void jw_int(JsonWriter *w, int64_t v)
{
        char b[24];
        value_prefix(w);
        put(w, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)v));
}

void jw_double(JsonWriter *w, double v)
{
        char b[32];
        int n;

        value_prefix(w);
        if (!isfinite(v)) {
                put(w, "null", 4);
                return;
        }
        if (v == (double)(int64_t)v && fabs(v) < 1e15) {
                put(w, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)v));
                return;
        }
        /* Shortest of %.15g/%.17g that round-trips, so 36.6 stays "36.6". */
        n = snprintf(b, sizeof b, "%.15g", v);
        if (strtod(b, NULL) != v)
                n = snprintf(b, sizeof b, "%.17g", v);
        put(w, b, (size_t)n);
}

void jw_bool(JsonWriter *w, bool v)
{
        value_prefix(w);
        put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_raw(JsonWriter *w, const char *text, size_t len)
{
        value_prefix(w);
        put(w, text, len);
}
