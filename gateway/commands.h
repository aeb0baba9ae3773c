/* Commands: what the gateway does when asked, by name, whoever asks (MQTT's cmd/<name> now, the
 * technician's page later). One dispatch table from command to handler; gateway/command.c parses
 * (pure, fuzzed), this file carries out and answers.
 *
 * Every answer is a JSON object {"ok":bool, "request_id"?, "error"?, "alert_id"?} (docs/uplink.md,
 * "Commands"). A command that was carried out, or whose effect is under way, is remembered by its
 * request id (gateway/command-memo.c): the same request arriving again is answered alike and not
 * carried out twice. One refused without effect (unparsable, rate-limited, a full disk) is not
 * remembered, so it may be sent again. Test alarms are rate-limited: 3 at once, then one a minute. */
#pragma once

#include <stddef.h>

#include <systemd/sd-event.h>

#include "gateway/alerts.h"
#include "gateway/ingest.h"

typedef struct Commands Commands;

typedef struct CommandsOptions {
        sd_event *event; /* its CLOCK_MONOTONIC times the rate limit (a reference is taken) */
        Alerts *alerts;  /* raises the test alarm; borrowed, must outlive the Commands */
        Ingest *ingest;  /* takes the nurse's observations; borrowed, must outlive the Commands */
        /* "status": publish a fresh status now (before the reply goes). */
        void (*publish_status)(void *userdata);
        void *userdata;
} CommandsOptions;

/* The caller owns *ret and frees it with commands_free(). */
int commands_new(const CommandsOptions *o, Commands **ret);
/* Takes NULL; returns NULL. */
Commands *commands_free(Commands *cmds);

/* Carries out command `name` (borrowed for the call) with its payload (len bytes from outside: empty
 * or a JSON object, checked by command_parse()). The answer, which the caller sends (on
 * reply/<name>), goes to *ret_reply: malloc'd, the caller frees it. Everything worth a log line is
 * logged here. 0, or -ENOMEM (logged; nothing to answer). */
int commands_dispatch(Commands *cmds, const char *name, const void *payload, size_t len, char **ret_reply);
