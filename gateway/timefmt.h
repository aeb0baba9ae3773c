/* Moved to common/timefmt.h. This forwarding header stays only for files this change may not edit:
 * gateway/manager.c, rules.c, replay.c, encode.c, tests/unit/test-rules.c and test-encode.c. Drop it
 * once they include common/timefmt.h. */
#pragma once

#include "common/timefmt.h"
