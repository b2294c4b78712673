/* Shared parts of the journal and snapshot code: record framing, file
 * mapping, checked writes and flushes, and the test-only fault hook.
 *
 * Record framing, all integers little-endian:
 *   u32 magic "APJR" | u32 payload length | u64 sequence |
 *   u32 CRC-32 of the sequence bytes and the payload | payload
 */
#ifndef APIG_PERSIST_IO_H
#define APIG_PERSIST_IO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

#define RECORD_MAGIC 0x524a5041u /* "APJR" read as little-endian */
#define RECORD_HEADER 20
#define RECORD_CRC_OFFSET 16 /* the u32 CRC-32 within the header */
#define MAX_RECORD (256u << 20)

/* Test hook: APIG_FAULT_INJECT="write:N,fsync:N,pause:STEP" makes the Nth
 * write or the Nth fsync/fdatasync of data files (counted from 1 per
 * process) fail with ENOSPC or EIO, and makes a snapshot writer sleep 30 s
 * before STEP (write, fsync, rename or dirsync) so a test can kill it
 * there. Unset, it costs one comparison per call. */
typedef struct persist_faults {
  uint64_t write_at, fsync_at; /* 0: never */
  uint64_t writes, fsyncs;     /* calls so far */
  char pause_step[16];         /* "" : never */
} persist_faults;

void persist_faults_init(persist_faults *faults);

/* write() of all of data; fsync (data_only: fdatasync); the folder's
 * fsync. Each returns 0, or -1 with errno set. */
int persist_write(persist_faults *faults, int fd, const void *data,
                  size_t len);
int persist_fsync(persist_faults *faults, int fd, int data_only);
int persist_fsync_dir(persist_faults *faults, const char *dir);
/* Sleeps when the hook names step; see persist_faults. */
void persist_pause(const persist_faults *faults, const char *step);

/* Returns dir/name in a new string (apig_free) or NULL. */
char *persist_path(const char *dir, const char *name);

/* Maps a whole file read-only. Returns 0, 1 when it does not exist, or -1
 * with errno set. An empty file maps to data NULL, size 0. */
int persist_map(const char *path, const char **data, size_t *size);
void persist_unmap(const char *data, size_t size);

void put_u32(unsigned char *p, uint32_t v);
void put_u64(unsigned char *p, uint64_t v);
uint32_t get_u32(const unsigned char *p);
uint64_t get_u64(const unsigned char *p);

/* Frames payload as one record at the end of out. */
void record_frame(apig_buf *out, uint64_t seq, const char *payload,
                  size_t len);

typedef struct record_view {
  uint64_t seq;
  const char *payload;
  size_t len;
} record_view;

/* Reads the record at *offset. Returns 0 (and advances *offset), 1 for a
 * record cut short by the end of data or the last record of data with a
 * bad checksum (a torn write), -1 for a damaged record. */
int record_next(const char *data, size_t size, size_t *offset,
                record_view *out);

/* Decodes the ops of a record payload and applies them as one change.
 * scratch is reused between calls; free it with apig_free. Returns 0, or
 * -1 when the payload is malformed or does not apply. */
typedef struct op_scratch {
  apig_op *ops;
  size_t cap;
} op_scratch;
int record_apply(apig_store *store, const char *payload, size_t len,
                 op_scratch *scratch);

#endif
