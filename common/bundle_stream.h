/*
 * bundle_stream.h -- reading a SignedBundle from a file without holding it in memory.
 *
 * A vault for a factory's batch holds thousands of BPPs; the station must not need memory in
 * proportion (DESIGN.md "The media bundles"). The SignedBundle puts its content first and the
 * signer's certificates and signature last, so a reader can walk the content one element at a
 * time, hash every byte of [0] as it passes, and check the chain and the signature at the end.
 *
 * The contract for callers: nothing read before bundle_stream_finish() returned IFPP_OK is
 * trusted. Importers stage what they read inside one store transaction and commit only after
 * finish succeeds; any failure rolls everything back. Memory is bounded by max_element, the
 * largest single element the caller accepts (one BPP, one eUICC record).
 */
#ifndef IFPP_BUNDLE_STREAM_H
#define IFPP_BUNDLE_STREAM_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "bundle.h"
#include "tlv.h"

typedef struct bundle_stream bundle_stream;

/*
 * Starts reading f (positioned at the bundle's first byte; size bytes long) as a bundle of type
 * t: checks the outer SEQUENCE, the type OID and the [0] header, and enters the content SEQUENCE.
 */
ifpp_err bundle_stream_open(FILE *f, size_t size, bundle_type t, size_t max_element, bundle_stream **out,
                            char *why, size_t why_len);

/*
 * Reads the next whole element at the current level into the stream's buffer; *out points into
 * it until the next call. IFPP_E_TLV_END at the end of the level (the level is left).
 */
ifpp_err bundle_stream_next(bundle_stream *s, tlv *out);

/* Reads only the header of the next element, which must carry tag and be constructed, and enters it. */
ifpp_err bundle_stream_enter(bundle_stream *s, uint32_t tag);

/*
 * For an optional element before a list: if the next element carries enter_tag it is entered
 * (*entered = true); otherwise it is read whole into *out as bundle_stream_next() would.
 */
ifpp_err bundle_stream_enter_or_next(bundle_stream *s, uint32_t enter_tag, tlv *out, bool *entered);

/*
 * After the whole content was read: reads the signer chain and the signature, verifies the chain
 * to root with the role t requires and the signature over [0]. *signer (if not NULL) gets the
 * verified signer certificate. Only now may the content be trusted.
 */
ifpp_err bundle_stream_finish(bundle_stream *s, const cert *root, time_t now, cert **signer, uint8_t content_hash[32],
                              char *why, size_t why_len);

/*
 * Verifies f (positioned at its first byte; size bytes) as a bundle of type t without parsing its
 * content: one SHA-256 pass over [0], then the signer chain (with t's role) and the signature. What
 * an importer calls before it parses a record or takes the store's write lock, so an unsigned or
 * wrongly signed file costs one hash. *signer and content_hash (if not NULL) get the verified
 * signer certificate and digest.
 */
ifpp_err bundle_stream_verify(FILE *f, size_t size, bundle_type t, const cert *root, time_t now, cert **signer,
                              uint8_t content_hash[32], char *why, size_t why_len);

/* Frees the stream (does not close the FILE). */
void bundle_stream_free(bundle_stream *s);

#endif
