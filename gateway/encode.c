#include <string.h>

#include "gateway/encode.h"
#include "gateway/json-writer.h"
#include "gateway/timefmt.h"

const char *alert_severity_name(AlertSeverity s)
{
        switch (s) {
        case SEVERITY_INFO:
                return "info";
        case SEVERITY_WARNING:
                return "warning";
        case SEVERITY_CRITICAL:
                return "critical";
        case _SEVERITY_MAX:
                break;
        }
        return NULL;
}

const char *alert_state_name(AlertState s)
{
        switch (s) {
        case ALERT_RAISED:
                return "raised";
        case ALERT_CLEARED:
                return "cleared";
        case _ALERT_STATE_MAX:
                break;
        }
        return NULL;
}

static void time_field(JsonWriter *w, const char *key, int64_t usec)
{
        char buf[RFC3339_MAX];
        json_key(w, key);
        json_string(w, format_rfc3339(buf, usec));
}

char *encode_reading(const Reading *r, size_t *ret_len)
{
        JsonWriter w;
        const char *loinc = metric_loinc(r->metric);

        json_writer_init(&w);
        json_object_begin(&w);
        json_key(&w, "type");
        json_string(&w, "reading");
        json_key(&w, "sensor");
        json_string(&w, r->sensor);
        json_key(&w, "metric");
        json_string(&w, metric_name(r->metric));
        json_key(&w, "value");
        json_double(&w, r->value);
        json_key(&w, "unit");
        json_string(&w, r->unit);
        if (loinc) {
                json_key(&w, "loinc");
                json_string(&w, loinc);
        }
        time_field(&w, "time", r->time_usec);
        json_key(&w, "time_quality");
        json_string(&w, time_quality_name(r->time_quality));
        if (r->flags) {
                json_key(&w, "status");
                json_array_begin(&w);
                for (unsigned b = 0; b < _READING_FLAG_COUNT; b++)
                        if (r->flags & (1u << b))
                                json_string(&w, reading_flag_name(b));
                json_array_end(&w);
        }
        json_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_event(const Event *e, size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        json_object_begin(&w);
        json_key(&w, "type");
        json_string(&w, "event");
        json_key(&w, "sensor");
        json_string(&w, e->sensor);
        json_key(&w, "event");
        json_string(&w, event_kind_name(e->kind));
        json_key(&w, "value");
        json_int(&w, e->value);
        time_field(&w, "time", e->time_usec);
        json_object_end(&w);
        return json_writer_steal(&w, ret_len);
}

char *encode_alert(const Alert *a, size_t *ret_len)
{
        JsonWriter w;

        json_writer_init(&w);
        json_object_begin(&w);
        json_key(&w, "type");
        json_string(&w, "alert");
        json_key(&w, "id");
        json_string(&w, a->id);
        json_key(&w, "kind");
        json_string(&w, a->kind);
        json_key(&w, "severity");
        json_string(&w, alert_severity_name(a->severity));
        json_key(&w, "state");
        json_string(&w, alert_state_name(a->state));
        if (a->patient) {
                json_key(&w, "patient");
                json_string(&w, a->patient);
        }
        time_field(&w, "time", a->time_usec);
        if (a->message) {
                json_key(&w, "message");
                json_string(&w, a->message);
        }
        json_key(&w, "evidence");
        if (a->evidence)
                json_raw(&w, a->evidence, strlen(a->evidence));
        else {
                json_array_begin(&w);
                json_array_end(&w);
        }
        json_object_end(&w);
        return json_writer_steal(&w, ret_len);
}
