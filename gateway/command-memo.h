/* The answers to recent downlink commands, by command name and request id, so that a command that
 * arrives twice (a QoS 1 redelivery, a nurse pressing "send" again, a retry after a lost reply) is
 * answered like the first time and not carried out again. Bounded: the oldest answer is forgotten
 * first. Pure memory; no I/O, no clock. */
#pragma once

#include <stddef.h>

#define COMMAND_MEMO_SIZE 64

typedef struct CommandMemo CommandMemo;

/* The caller owns *ret and frees it with command_memo_free() (takes NULL; returns NULL). */
int command_memo_new(CommandMemo **ret);
CommandMemo *command_memo_free(CommandMemo *cm);

/* The answer given to (name, request_id), or NULL. The pointer is the memo's and stays valid until
 * the next command_memo_put(). An empty request_id never matches. */
const char *command_memo_get(const CommandMemo *cm, const char *name, const char *request_id);
/* Remembers copies of answer, name and request_id; an empty request_id is not remembered. 0 or
 * -ENOMEM. */
int command_memo_put(CommandMemo *cm, const char *name, const char *request_id, const char *answer);
