/*
 * replay_card.h -- a card that costs no CPU: it answers the station with the responses a real session
 * against the software eUICC gave, recorded once (issue 13 "Done when", issue 16 item 4).
 *
 * The software eUICC does what a card does -- key agreement, BPP decryption and installation, a signed
 * PIR, an fsync'd state file -- on the station's own cores. That is right for correctness and wrong for
 * measuring the station: with 32 slots, 32 simulated cards' crypto and syncs share the two cores and the
 * disk with the station. So a benchmark records each DUT's session once (untimed) through the `record`
 * backend and then runs the station against the `replay` backend, which answers each command with the
 * recorded response. The station runs its whole real sequence -- its own signing, the PIR verified
 * against the eUICC certificate, every store move -- against cards that cost nothing.
 *
 *   record:CARD-FILE,log=LOG   the virtual backend on CARD-FILE; every reset and exchange appended to LOG
 *   replay:LOG                 answers from LOG: each reset goes to the next recorded session, each command
 *                              gets the next recorded response. A command whose header (CLA INS P1 P2)
 *                              differs from the recording's is answered 6F00 and the slot's last error
 *                              says which: a station that changed its sequence fails, it is never fed a
 *                              wrong answer silently. Commands whose bytes differ only in the station's own
 *                              fresh values (its signature over the card's challenge) are accepted.
 *
 * A replayed session only verifies if the store hands out the same BPPs as when it was recorded: restore
 * the store as it was before the recording. A replay log's position lives in the process (one log, one
 * slot), so a slot's next session continues where its last one ended, as the card file does for `virtual`.
 * A test tool: the product never links it.
 */
#ifndef IFPP_REPLAY_CARD_H
#define IFPP_REPLAY_CARD_H

#include "err.h"
#include "fpa.h"

/* Registers the `record` and `replay` backends (idempotent per process is not promised: call once). */
ifpp_err replay_card_register(void);

/* Forgets every replay log loaded so far (the next open reads its file again, from its first session). */
void replay_card_forget(void);

#endif
