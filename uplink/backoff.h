/* Moved to common/backoff.h. This forwarding header stays only for tests/unit/test-encode.c, which
 * this change may not edit; drop it once that file includes common/backoff.h. */
#pragma once

#include "common/backoff.h"
