/* Durable state: journal files and snapshot files in a data folder.
 *
 * Every change is a list of apig_op, appended to the journal as one record
 * with a checksum and flushed before the request is answered. A snapshot is
 * the whole store written as ops. Start-up loads the newest snapshot and
 * replays the journal records after it. The file layout is described in
 * persist.c.
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
  uint64_t snapshot_interval_ms; /* 0: no periodic snapshot */
  uint64_t journal_max_bytes;    /* 0: no size trigger */
  const apig_allocator *allocator; /* installed in loop callbacks */
} apig_persist_options;

/* Opens (creating when missing) the data folder and loads its state into
 * store, which the handle keeps using: a failed flush reloads it. Returns
 * NULL with a message in *errmsg (free with apig_free()); a damaged file is
 * named with the offset of the damage, and no file is changed then. */
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
 * flush failed; the store then holds only the flushed changes again. With
 * a loop attached, cb runs later on the loop thread and flushes of many
 * records share one fdatasync; without one, the flush is synchronous and
 * cb runs before this returns. */
void apig_persist_wait(apig_persist *persist, uint64_t seq,
                       apig_durable_cb cb, void *arg);

/* Runs flushes on loop's thread pool and snapshots in a child process,
 * periodically and when the journal grows past journal_max_bytes. store
 * must be the one given to apig_persist_open (or NULL). A NULL loop
 * detaches: pending flushes finish synchronously, a running snapshot
 * child is stopped. */
void apig_persist_attach(apig_persist *persist, uv_loop_t *loop,
                         const apig_store *store);

/* Writes a snapshot of the store given to apig_persist_open now,
 * synchronously; store must be that one (or NULL). Returns 0 or -1. */
int apig_persist_snapshot(apig_persist *persist, const apig_store *store);

/* Starts a snapshot in the background when a loop is attached (a request
 * while one runs is logged and folded into it), else writes one now.
 * Returns 0, or -1 when it could not start (logged). */
int apig_persist_snapshot_background(apig_persist *persist);

/* Flushes, writes a final snapshot (when store is not NULL; it must be
 * the store given to apig_persist_open) and frees. */
void apig_persist_close(apig_persist *persist, const apig_store *store);

/* Journal and snapshot figures for metrics. */
typedef struct apig_persist_stats {
  uint64_t flushes, flush_ns_total, journal_bytes;
  int64_t last_snapshot_ns; /* 0: none yet */
  uint64_t snapshots, snapshot_failures;
  uint64_t last_snapshot_bytes;
  int64_t last_snapshot_duration_ns;
  int64_t last_fork_ns; /* how long fork() held the loop */
} apig_persist_stats;
void apig_persist_get_stats(const apig_persist *persist,
                            apig_persist_stats *stats);

/* Binary op encoding (see op_codec.c). Encoding appends to out; decoding
 * reads the op at *offset of data, points op's strings into data and
 * advances *offset. Returns 0, or -1 for malformed bytes. */
void apig_op_encode(apig_buf *out, const apig_op *op);
int apig_op_decode(const char *data, size_t len, size_t *offset,
                   apig_op *op);

#endif
