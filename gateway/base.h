/* Moved to common/: the macros to common/macro.h, logging to common/log.h. This forwarding header
 * stays only for files this change may not edit: gateway/manager.c, rules.c, alerts.c, command.c,
 * command-memo.c, replay.c, decode-tool.c, tests/unit/test-rules.c, test-commands.c and
 * test-alerts.c. Drop it once they include common/. */
#pragma once

#include "common/log.h"
#include "common/macro.h"
