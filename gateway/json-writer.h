/* An append-only JSON text builder for the hot path (one reading, one event, one alert).
 * Not a DOM: callers write keys and values in order; the writer adds commas and escapes strings.
 * Parsing of outside JSON uses jansson instead. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct JsonWriter {
        char *buf;   /* NUL-terminated text, owned; take it with json_writer_steal() */
        size_t len;  /* bytes of text, without the NUL */
        size_t size; /* bytes allocated */
        bool comma;  /* a value was written at this nesting level: the next needs a comma */
        bool failed; /* an allocation failed; everything after is dropped */
} JsonWriter;

void json_writer_init(JsonWriter *w);
void json_writer_done(JsonWriter *w);
/* Returns the text (caller frees) and resets the writer, or NULL if any allocation failed. */
char *json_writer_steal(JsonWriter *w, size_t *ret_len);

void jw_object_begin(JsonWriter *w);
void jw_object_end(JsonWriter *w);
void jw_array_begin(JsonWriter *w);
void jw_array_end(JsonWriter *w);
void jw_key(JsonWriter *w, const char *key);
void jw_string(JsonWriter *w, const char *s);
void jw_int(JsonWriter *w, int64_t v);
/* Shortest text that reads back as the same double; NaN and infinities become null. */
void jw_double(JsonWriter *w, double v);
void jw_bool(JsonWriter *w, bool v);
void jw_raw(JsonWriter *w, const char *text, size_t len);
