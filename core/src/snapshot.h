/* Snapshot files: the whole store as records of ops.
 *
 * Layout: the 8-byte magic "APIGSNAP", a u32 format version, the u64
 * sequence of the last journal record the snapshot holds, then records
 * (framed as in persist_io.h, numbered from 1) and an end record numbered
 * 0 whose payload is a u32 CRC-32 and the u64 count of all records before
 * it. In format 3 that CRC-32 covers the records' own CRC fields, because
 * those already cover every byte. Format 2 covered the records whole, so
 * loading read each byte twice. Each record is one apig_store_apply call
 * at load time.
 */
#ifndef APIG_SNAPSHOT_H
#define APIG_SNAPSHOT_H

#include <stdint.h>

#include "persist_io.h"
#include "store.h"

/* Bump when the layout of records or the op encoding changes; files of
 * another version are then rejected with a clear error instead of being
 * misread. Version 1 held ops as JSON text. Version 2 files still load. */
#define SNAPSHOT_FORMAT_VERSION 3
#define SNAPSHOT_FORMAT_WHOLE_CRC 2
#define SNAPSHOT_HEADER 20

/* Where a snapshot write stands; on failure `step` names the step that
 * failed and `error` its errno. */
typedef struct snapshot_result {
  const char *step;
  int error;
  uint64_t bytes, records;
} snapshot_result;

/* Writes store, as of journal record seq, to dir/final_name through the
 * temporary file dir/tmp_name: write, fsync, rename, folder fsync. When
 * go_fd >= 0, waits for one byte on it before the rename: 'g' goes on,
 * anything else (or end of file) abandons the snapshot. The temporary
 * file is removed on failure. Returns 0 or -1 (see result). */
int snapshot_write_file(const char *dir, const char *tmp_name,
                        const char *final_name, const apig_store *store,
                        uint64_t seq, persist_faults *faults, int go_fd,
                        snapshot_result *result);

/* Loads the snapshot at path into store and stores its sequence in *seq.
 * Returns 0, or -1 with a message naming path and the offset of the
 * damage in *errmsg (apig_free). */
int snapshot_load(const char *path, apig_store *store, uint64_t *seq,
                  op_scratch *scratch, char **errmsg);

#endif
