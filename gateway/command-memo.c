#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/command-memo.h"

typedef struct MemoEntry {
        char *name;
        char *request_id;
        char *answer;
} MemoEntry;

struct CommandMemo {
        MemoEntry entries[COMMAND_MEMO_SIZE]; /* a ring; next is the oldest slot */
        size_t next;
};

static void entry_clear(MemoEntry *e)
{
        free(e->name);
        free(e->request_id);
        free(e->answer);
        *e = (MemoEntry){0};
}

int command_memo_new(CommandMemo **ret)
{
        CommandMemo *cm = calloc(1, sizeof *cm);
        if (!cm)
                return -ENOMEM;
        *ret = cm;
        return 0;
}

CommandMemo *command_memo_free(CommandMemo *cm)
{
        if (!cm)
                return NULL;
        for (size_t i = 0; i < COMMAND_MEMO_SIZE; i++)
                entry_clear(&cm->entries[i]);
        free(cm);
        return NULL;
}

const char *command_memo_get(const CommandMemo *cm, const char *name, const char *request_id)
{
        if (!request_id || !request_id[0])
                return NULL;
        for (size_t i = 0; i < COMMAND_MEMO_SIZE; i++) {
                const MemoEntry *e = &cm->entries[i];
                if (e->answer && streq(e->name, name) && streq(e->request_id, request_id))
                        return e->answer;
        }
        return NULL;
}

int command_memo_put(CommandMemo *cm, const char *name, const char *request_id, const char *answer)
{
        MemoEntry n;

        if (!request_id || !request_id[0])
                return 0;
        n = (MemoEntry){.name = strdup(name), .request_id = strdup(request_id), .answer = strdup(answer)};
        if (!n.name || !n.request_id || !n.answer) {
                entry_clear(&n);
                return -ENOMEM;
        }
        entry_clear(&cm->entries[cm->next]);
        cm->entries[cm->next] = n;
        cm->next = (cm->next + 1) % COMMAND_MEMO_SIZE;
        return 0;
}
