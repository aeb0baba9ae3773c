#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "gateway/base.h"
#include "gateway/command.h"
#include "sensors/reading.h"

static const char *const names[_COMMAND_KIND_MAX] = {
        [COMMAND_TEST_ALARM] = "test-alarm",
        [COMMAND_STATUS] = "status",
        [COMMAND_OBSERVATION] = "observation",
};

const char *command_name(CommandKind k)
{
        return k < _COMMAND_KIND_MAX ? names[k] : NULL;
}

static int copy_string(json_t *obj, const char *key, char *dst, size_t size, const char **ret_error)
{
        json_t *v = json_object_get(obj, key);
        if (!v)
                return 0;
        if (!json_is_string(v)) {
                *ret_error = "a field that must be a string is not";
                return -EBADMSG;
        }
        if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v)) {
                *ret_error = "a string field is too long or contains a NUL";
                return -EBADMSG;
        }
        memcpy(dst, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

int command_parse(const char *name, const void *payload, size_t len, Command *ret, const char **ret_error)
{
        Command c = {};
        json_t *root;
        json_error_t err;
        CommandKind k;
        int r;

        for (k = 0; k < _COMMAND_KIND_MAX && !streq(names[k], name); k++)
                ;
        if (k == _COMMAND_KIND_MAX) {
                *ret_error = "unknown command";
                return -ENOENT;
        }
        c.kind = k;
        if (len > COMMAND_PAYLOAD_MAX) {
                *ret_error = "payload larger than 4096 bytes";
                return -EMSGSIZE;
        }
        if (len > 0) {
                root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
                if (!root || !json_is_object(root)) {
                        json_decref(root);
                        *ret_error = "payload is not a JSON object";
                        return -EBADMSG;
                }
                r = copy_string(root, "request_id", c.request_id, sizeof c.request_id, ret_error);
                if (r == 0)
                        r = copy_string(root, "message", c.message, sizeof c.message, ret_error);
                if (r == 0 && k == COMMAND_OBSERVATION)
                        r = copy_string(root, "metric", c.metric, sizeof c.metric, ret_error);
                if (r == 0 && k == COMMAND_OBSERVATION)
                        r = copy_string(root, "unit", c.unit, sizeof c.unit, ret_error);
                if (r == 0 && k == COMMAND_OBSERVATION) {
                        json_t *v = json_object_get(root, "value");
                        Metric m;
                        if (streq(c.metric, "consciousness")) {
                                const char *a = json_is_string(v) ? json_string_value(v) : "";
                                if (strlen(a) != 1 || !strchr("ACVPU", a[0])) {
                                        *ret_error = "consciousness is one of \"A\", \"C\", \"V\", \"P\", \"U\"";
                                        r = -EBADMSG;
                                } else
                                        c.acvpu = a[0];
                        } else if (metric_from_name(c.metric, &m) < 0) {
                                *ret_error = "observation: unknown or missing \"metric\"";
                                r = -EBADMSG;
                        } else if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                                *ret_error = "observation: \"value\" must be a number";
                                r = -EBADMSG;
                        } else
                                c.value = json_number_value(v);
                }
                json_decref(root);
                if (r < 0)
                        return r;
        } else if (k == COMMAND_OBSERVATION) {
                *ret_error = "observation needs a JSON object with \"metric\" and \"value\"";
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}
