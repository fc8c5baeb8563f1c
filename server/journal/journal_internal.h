/* journal_internal.h -- test hooks of the journal; not for the hub. */
#ifndef MHTAS_JOURNAL_INTERNAL_H
#define MHTAS_JOURNAL_INTERNAL_H

/* Test hook, read once by journal_open: when non-zero the journal marks a
 * batch acknowledged BEFORE calling fdatasync and ignores the sync's result.
 * It exists only so the power-loss test can prove it catches exactly that
 * bug (tests/unit/journal/crash_test.c, test_ack_before_sync_is_caught).
 * Never set it outside tests. */
extern int journal__test_ack_before_sync;

#endif
