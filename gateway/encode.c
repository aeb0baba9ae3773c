#include <string.h>

#include "common/string-table.h"
#include "common/timefmt.h"
#include "gateway/encode.h"
#include "gateway/json-writer.h"

static const char *const alert_severity_table[_SEVERITY_MAX] = {
    [SEVERITY_INFO] = "info",
    [SEVERITY_WARNING] = "warning",
    [SEVERITY_CRITICAL] = "critical",
};
DEFINE_STRING_TABLE_LOOKUP(alert_severity, AlertSeverity, alert_severity_table, _SEVERITY_MAX);

static const char *const alert_state_table[_ALERT_STATE_MAX] = {
    [ALERT_RAISED] = "raised",
    [ALERT_CLEARED] = "cleared",
};
DEFINE_STRING_TABLE_LOOKUP_TO_NAME(alert_state, AlertState, alert_state_table, _ALERT_STATE_MAX);

static void time_field(JsonWriter *w, const char *key, int64_t usec)
{
        char buf[RFC3339_MAX];
        jw_key(w, key);
        jw_string(w, format_rfc3339(buf, usec));
}

char *encode_reading(const Reading *r, size_t *ret_len)
{
        JsonWriter w;
        const char *loinc = metric_loinc(r->metric);

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "type");
        jw_string(&w, "reading");
        if (r->sensor[0]) {
                jw_key(&w, "sensor");
                jw_string(&w, r->sensor);
        }
        jw_key(&w, "metric");
        jw_string(&w, metric_name(r->metric));
        jw_key(&w, "value");
        if (r->absent) /* NaN, NRes, +INF, ...: never a number */
                jw_raw(&w, "null", 4);
        else
                jw_double(&w, r->value);
        if (r->absent) {
                jw_key(&w, "absent");
                jw_string(&w, r->absent);
        }
        jw_key(&w, "unit");
        jw_string(&w, r->unit);
        if (loinc) {
                jw_key(&w, "loinc");
                jw_string(&w, loinc);
        }
        time_field(&w, "time", r->time_usec);
        jw_key(&w, "time_quality");
        jw_string(&w, time_quality_name(r->time_quality));
        if (r->flags) {
                jw_key(&w, "status");
                jw_array_begin(&w);
                for (unsigned b = 0; b < _READING_FLAG_COUNT; b++)
                        if (r->flags & (1u << b))
                                jw_string(&w, reading_flag_name(b));
                jw_array_end(&w);
        }
        if (r->has_user) {
                jw_key(&w, "user");
                jw_int(&w, r->user);
        }
        if (r->has_sequence) {
                jw_key(&w, "sequence");
                jw_int(&w, r->sequence);
        }
        if (r->site) {
                jw_key(&w, "site");
                jw_string(&w, r->site);
        }
        if (r->sample) {
                jw_key(&w, "sample");
                jw_string(&w, r->sample);
        }
        jw_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_event(const Event *e, size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "type");
        jw_string(&w, "event");
        if (e->sensor[0]) {
                jw_key(&w, "sensor");
                jw_string(&w, e->sensor);
        }
        jw_key(&w, "event");
        jw_string(&w, event_kind_name(e->kind));
        jw_key(&w, "value");
        jw_int(&w, e->value);
        time_field(&w, "time", e->time_usec);
        jw_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_alert(const Alert *a, size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "type");
        jw_string(&w, "alert");
        jw_key(&w, "id");
        jw_string(&w, a->id);
        jw_key(&w, "kind");
        jw_string(&w, a->kind);
        jw_key(&w, "severity");
        jw_string(&w, alert_severity_name(a->severity));
        jw_key(&w, "state");
        jw_string(&w, alert_state_name(a->state));
        if (a->patient) {
                jw_key(&w, "patient");
                jw_string(&w, a->patient);
        }
        time_field(&w, "time", a->time_usec);
        if (a->message) {
                jw_key(&w, "message");
                jw_string(&w, a->message);
        }
        jw_key(&w, "evidence");
        if (a->evidence)
                jw_raw(&w, a->evidence, strlen(a->evidence));
        else {
                jw_array_begin(&w);
                jw_array_end(&w);
        }
        jw_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_clock_step(int64_t delta_usec, int64_t at_usec, uint64_t from_seq, uint64_t to_seq,
                        size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "type");
        jw_string(&w, "clock_step");
        time_field(&w, "time", at_usec);
        time_field(&w, "before", at_usec - delta_usec);
        jw_key(&w, "delta_ms");
        jw_int(&w, delta_usec / 1000);
        if (from_seq <= to_seq) {
                jw_key(&w, "from_seq");
                jw_int(&w, (int64_t)from_seq);
                jw_key(&w, "to_seq");
                jw_int(&w, (int64_t)to_seq);
        }
        jw_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_seq_skipped(int64_t at_usec, uint64_t from_seq, uint64_t to_seq, size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        jw_object_begin(&w);
        jw_key(&w, "type");
        jw_string(&w, "seq_skipped");
        time_field(&w, "time", at_usec);
        jw_key(&w, "from_seq");
        jw_int(&w, (int64_t)from_seq);
        jw_key(&w, "to_seq");
        jw_int(&w, (int64_t)to_seq);
        jw_key(&w, "reason");
        jw_string(&w, "unclean stop");
        jw_object_end(&w);
        return json_writer_steal(&w, ret_len);
}
