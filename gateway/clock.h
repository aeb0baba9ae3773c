/* The gateway's clock, as decoders need to be told about it. */
#pragma once

#include <stdint.h>

#include "sensors/decode.h"

/* Receive time now, whether the kernel says the clock is synchronised (adjtimex), and the local
 * zone's offset (device clocks are set to local time). */
DecodeContext decode_context_now(void);
