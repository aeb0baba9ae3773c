/* Item bodies for the outbox: one JSON object per reading, event or alert, without "seq"
 * (the uplink adds it when it sends). The format is documented in docs/uplink.md. */
#pragma once

#include <stddef.h>

#include "gateway/alert.h"
#include "sensors/reading.h"

/* Each returns a malloc'd NUL-terminated string and its length, or NULL on allocation failure. */
char *encode_reading(const Reading *r, size_t *ret_len);
char *encode_event(const Event *e, size_t *ret_len);
char *encode_alert(const Alert *a, size_t *ret_len);
/* The wall clock was stepped by delta_usec at `at_usec` (the new clock). Items from_seq..to_seq (none
 * if from_seq > to_seq) were stamped by the old clock. See docs/uplink.md, "clock_step". */
char *encode_clock_step(int64_t delta_usec, int64_t at_usec, uint64_t from_seq, uint64_t to_seq,
                        size_t *ret_len);
/* {"type":"seq_skipped",...}: after an unclean stop, the seqs [from_seq, to_seq] that no stored item
 * carries (reserved by the last run), so that the service does not count them as lost. malloc'd. */
char *encode_seq_skipped(int64_t at_usec, uint64_t from_seq, uint64_t to_seq, size_t *ret_len);
