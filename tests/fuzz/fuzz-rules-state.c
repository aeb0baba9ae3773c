/* libFuzzer target: the rules' saved state (StateDirectory/alerts.json, "rules"), as a restart reads
 * it back. The file is the gateway's own, but a damaged one must neither crash the engine nor make
 * its deadline arithmetic overflow; the engine then runs a simulated day. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/rules.h"

static void sink(void *userdata, Alert *a)
{
        if (a->state == ALERT_RAISED)
                snprintf(a->id, sizeof a->id, "fuzz-%d", (*(int *)userdata)++);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static Config *c;
        static const char text[] =
            "[Input \"door\"]\nChip=gpiochip0\nLine=1\nKind=door\nRole=exit-door\n"
            "[Input \"bed\"]\nChip=gpiochip0\nLine=2\nKind=bed\nRole=bed\n"
            "[Input \"button\"]\nChip=gpiochip0\nLine=3\nKind=button\nRole=alarm-button\n"
            "[Medication]\nSchedule=08:00,20:00\n[Rules]\nAlarmButtonClearMinutes=30\n";
        const int64_t start = 1772445600LL * 1000000; /* 2026-03-02T10:00:00Z */
        json_t *j = json_loadb((const char *)data, size, 0, NULL), *out;
        Rules *r = NULL;
        int n = 0;

        if (!c) {
                FILE *f = fmemopen((void *)text, strlen(text), "r");
                if (!f || config_parse_mode(f, "fuzz.conf", CONFIG_RULES_ONLY, &c, NULL) < 0)
                        abort();
                fclose(f);
        }
        if (!j)
                return 0;
        if (rules_new(c, start, sink, &n, &r) < 0)
                abort();
        if (rules_import(r, j) == 0) {
                Event e = {.kind = EVENT_BED, .value = 0, .time_usec = start, .sensor = "bed"};
                rules_event(r, &e);
                rules_advance(r, start + 24LL * 3600 * 1000000);
                out = rules_export(r);
                if (!out)
                        abort();
                json_decref(out);
        }
        rules_free(r);
        json_decref(j);
        return 0;
}
