/* Durable state: a journal of changes and snapshot files in a data folder.
 *
 * Every change is a list of apig_op, appended to the journal as one record
 * with a checksum. A snapshot is the whole store written as ops. Start-up
 * loads the newest snapshot and replays the journal after it.
 */
#ifndef APIG_PERSIST_H
#define APIG_PERSIST_H

#include <stdint.h>
#include <uv.h>

#include "core.h"
#include "store.h"

typedef struct apig_persist apig_persist;

typedef struct apig_persist_options {
  apig_fsync_mode fsync_mode;
  uint64_t snapshot_interval_ms;
  uint64_t journal_max_bytes;
} apig_persist_options;

/* Opens (creating when missing) the data folder and loads its state into
 * store. Returns NULL with a message in *errmsg (free with apig_free()). */
apig_persist *apig_persist_open(const char *dir,
                                const apig_persist_options *options,
                                const apig_logger *logger, apig_store *store,
                                char **errmsg);

/* Appends one record holding ops. Returns its sequence number (> 0), or 0
 * when the write failed; the caller then leaves the store unchanged. */
uint64_t apig_persist_append(apig_persist *persist, const apig_op *ops,
                             size_t count);

/* Removes record seq again; only the last appended record can be removed.
 * Used when the change it holds could not be applied in memory. */
void apig_persist_rollback(apig_persist *persist, uint64_t seq);

/* Calls cb(arg, 0) once record seq is flushed to disk, cb(arg, -1) when the
 * flush failed. Without a loop attached, flushes synchronously. */
void apig_persist_wait(apig_persist *persist, uint64_t seq,
                       apig_durable_cb cb, void *arg);

/* Runs flushes and snapshots in the background on loop (NULL: detach). */
void apig_persist_attach(apig_persist *persist, uv_loop_t *loop,
                         const apig_store *store);

/* Writes a snapshot of store now, synchronously. Returns 0 or -1. */
int apig_persist_snapshot(apig_persist *persist, const apig_store *store);

/* Flushes, writes a final snapshot of store (when not NULL) and frees. */
void apig_persist_close(apig_persist *persist, const apig_store *store);

/* Journal and snapshot figures for metrics. */
typedef struct apig_persist_stats {
  uint64_t flushes, flush_ns_total, journal_bytes;
  int64_t last_snapshot_ns; /* 0: none yet */
} apig_persist_stats;
void apig_persist_get_stats(const apig_persist *persist,
                            apig_persist_stats *stats);

/* Op records as text: one JSON object per op. Encoding appends to out;
 * decoding fills op with pointers into the parsed tree `item`. */
void apig_op_encode(apig_buf *out, const apig_op *op);
int apig_op_decode(const void *item, apig_op *op);

#endif
