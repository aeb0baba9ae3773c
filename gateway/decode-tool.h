/* The old name of gateway/cli-decode.h, kept only for tests/unit/test-decode.c and test-devices.c
 * (parse_hex), which another change owns: include gateway/cli-decode.h instead. */
#pragma once

#include "gateway/cli-decode.h"
