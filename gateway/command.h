/* Downlink commands on homecare/v1/<gw>/cmd/<name>. The payload is empty or a JSON object of at
 * most 4 KiB. Parsing is pure so that it can be fuzzed; gateway/commands.c acts on the result. */
#pragma once

#include <stddef.h>

typedef enum CommandKind {
        COMMAND_TEST_ALARM,  /* raise a test alert end to end ("send test alarm") */
        COMMAND_STATUS,      /* publish a fresh status now */
        COMMAND_OBSERVATION, /* a nurse's observation: {"metric":"respiratory_rate","value":22} or
                                consciousness "A".."U" */
        _COMMAND_KIND_MAX,
} CommandKind;

#define COMMAND_PAYLOAD_MAX 4096

typedef struct Command {
        CommandKind kind;
        char request_id[65]; /* echoed in the reply so the sender can match it; may be empty */
        char message[257];   /* test-alarm: free text shown with the alert; may be empty */
        char metric[48];     /* observation: a metric name, or "consciousness" */
        double value;        /* observation: the value (numbers) */
        char acvpu;          /* observation: consciousness 'A', 'C', 'V', 'P' or 'U' */
        char unit[16];       /* observation: the unit, or empty for the metric's usual one */
} Command;

/* payload: len bytes from outside, not NUL-terminated. Returns 0 and fills *ret (the caller's), or a
 * negative errno with a static description (valid for ever) in *reterr_error:
 * -ENOENT unknown command, -EMSGSIZE too large, -EBADMSG not a JSON object or wrong field types,
 * -ERANGE an observation's value outside what a human body (or the room) can show. */
int command_parse(const char *name, const void *payload, size_t len, Command *ret,
                  const char **reterr_error);
/* A static string; NULL for a value out of range. */
const char *command_name(CommandKind k);
