/* The alarm button: raised at once when pressed, cleared by itself after the alarm period. Only a
 * sensor or input with Role=alarm-button is the alarm button (the dispatch in rules.c decides). See
 * docs/rules.md, "alarm_button". */
#include <stdio.h>

#include "gateway/rules-internal.h"

void alarm_pressed(Rules *r, const Event *e, const json_t *evidence)
{
        char msg[128];
        snprintf(msg, sizeof msg, "alarm button pressed (%s)", e->sensor);
        rules_raise(r, ALERT_KIND_ALARM_BUTTON, "", SEVERITY_CRITICAL, msg, evidence);
}

int64_t alarm_next_deadline(Rules *r)
{
        int64_t d = INT64_MAX;
        for (size_t i = 0; i < r->n_open; i++)
                if (r->open[i].kind == ALERT_KIND_ALARM_BUTTON)
                        d = earliest(d, r->open[i].raised + r->alarm_clear);
        return d;
}

void alarm_fire(Rules *r)
{
        for (size_t i = 0; i < r->n_open;)
                if (r->open[i].kind == ALERT_KIND_ALARM_BUTTON &&
                    r->open[i].raised + r->alarm_clear <= r->now)
                        rules_clear_open(r, &r->open[i], "cleared after the alarm period", NULL);
                else
                        i++;
}
