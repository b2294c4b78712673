/* Journal and snapshot files.
 *
 * Record framing, used by both files, all integers little-endian:
 *   u32 magic "APJR" | u32 payload length | u64 sequence | u32 CRC-32 of the
 *   sequence bytes and the payload | payload (a JSON array of ops)
 * The journal, "journal.apig", is a run of records. A snapshot,
 * "snapshot.apig", starts with the 8-byte magic "APIGSNAP", a u32 format
 * version and the u64 sequence of the last journal record it contains,
 * then records, then an end record whose payload is the 8-byte CRC-32 and
 * count of all records before it.
 *
 * Invariant: the snapshot holds every change up to its sequence, and the
 * journal every change after the previous snapshot, so start-up loads the
 * snapshot and replays journal records with a larger sequence. A snapshot
 * is written to a temporary file, flushed, renamed over the old one and the
 * folder flushed, so a crash at any point leaves one whole snapshot.
 */
#include "persist.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"

/* Bump when the layout of records or ops changes; older files are then
 * rejected with a clear error instead of being misread. */
#define SNAPSHOT_FORMAT_VERSION 1
#define RECORD_MAGIC 0x524a5041u /* "APJR" read as little-endian */
#define RECORD_HEADER 20
#define MAX_RECORD (256u << 20)

struct apig_persist {
  char *dir;
  char *journal_path, *snapshot_path;
  int journal_fd;
  uint64_t seq;         /* last sequence appended */
  uint64_t synced_seq;  /* last sequence flushed */
  off_t journal_size;
  off_t last_record_offset; /* where the last appended record starts */
  apig_persist_options options;
  const apig_logger *logger;
  apig_persist_stats stats;
};

static char *join_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *path = apig_malloc(a + b + 2);
  if (path) {
    memcpy(path, dir, a);
    path[a] = '/';
    memcpy(path + a + 1, name, b + 1);
  }
  return path;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t record_crc(const unsigned char *seq_bytes, const char *payload,
                           size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, seq_bytes, 8);
  crc = crc32_z(crc, (const Bytef *)payload, len);
  return (uint32_t)crc;
}

/* Frames payload as one record into out. */
static void frame_record(apig_buf *out, uint64_t seq, const char *payload,
                         size_t len) {
  unsigned char header[RECORD_HEADER];
  put_u32(header, RECORD_MAGIC);
  put_u32(header + 4, (uint32_t)len);
  put_u64(header + 8, seq);
  put_u32(header + 16, record_crc(header + 8, payload, len));
  apig_buf_append(out, header, sizeof header);
  apig_buf_append(out, payload, len);
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static void encode_ops(apig_buf *out, const apig_op *ops, size_t count) {
  apig_buf_putc(out, '[');
  for (size_t i = 0; i < count; i++) {
    if (i)
      apig_buf_putc(out, ',');
    apig_op_encode(out, &ops[i]);
  }
  apig_buf_putc(out, ']');
}

uint64_t apig_persist_append(apig_persist *persist, const apig_op *ops,
                             size_t count) {
  apig_buf payload, record;
  apig_buf_init(&payload);
  apig_buf_init(&record);
  encode_ops(&payload, ops, count);
  uint64_t seq = persist->seq + 1;
  frame_record(&record, seq, payload.data, payload.len);
  int failed = payload.failed || record.failed || payload.len > MAX_RECORD;
  if (!failed && write_all(persist->journal_fd, record.data, record.len) != 0) {
    apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
              "journal write to %s failed: %s", persist->journal_path,
              strerror(errno));
    /* Cut off whatever part of the record reached the file. */
    if (ftruncate(persist->journal_fd, persist->journal_size) != 0 ||
        lseek(persist->journal_fd, persist->journal_size, SEEK_SET) < 0)
      apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
                "journal truncate of %s failed: %s", persist->journal_path,
                strerror(errno));
    failed = 1;
  }
  size_t written = record.len;
  apig_buf_free(&payload);
  apig_buf_free(&record);
  if (failed)
    return 0;
  persist->last_record_offset = persist->journal_size;
  persist->journal_size += (off_t)written;
  persist->stats.journal_bytes = (uint64_t)persist->journal_size;
  persist->seq = seq;
  return seq;
}

void apig_persist_rollback(apig_persist *persist, uint64_t seq) {
  if (seq != persist->seq || seq == 0)
    return;
  if (ftruncate(persist->journal_fd, persist->last_record_offset) != 0 ||
      lseek(persist->journal_fd, persist->last_record_offset, SEEK_SET) < 0) {
    apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
              "journal rollback of %s failed: %s", persist->journal_path,
              strerror(errno));
    return;
  }
  persist->journal_size = persist->last_record_offset;
  persist->seq--;
}

static int flush_journal(apig_persist *persist) {
  if (persist->options.fsync_mode == APIG_FSYNC_OFF) {
    persist->synced_seq = persist->seq;
    return 0;
  }
  int64_t start = apig_now_ns();
  if (fdatasync(persist->journal_fd) != 0) {
    apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
              "journal fdatasync of %s failed: %s", persist->journal_path,
              strerror(errno));
    return -1;
  }
  persist->stats.flushes++;
  persist->stats.flush_ns_total += (uint64_t)(apig_now_ns() - start);
  persist->synced_seq = persist->seq;
  return 0;
}

void apig_persist_wait(apig_persist *persist, uint64_t seq,
                       apig_durable_cb cb, void *arg) {
  if (seq <= persist->synced_seq) {
    cb(arg, 0);
    return;
  }
  cb(arg, flush_journal(persist));
}

void apig_persist_attach(apig_persist *persist, uv_loop_t *loop,
                         const apig_store *store) {
  (void)persist;
  (void)loop;
  (void)store;
}

void apig_persist_get_stats(const apig_persist *persist,
                            apig_persist_stats *stats) {
  *stats = persist->stats;
}

/* ---- snapshot writing ---- */

typedef struct snapshot_writer {
  apig_buf out;
  apig_buf payload;
  uLong crc;
  uint64_t records;
} snapshot_writer;

static void snapshot_op(snapshot_writer *w, const apig_op *op) {
  apig_buf_reset(&w->payload);
  encode_ops(&w->payload, op, 1);
  size_t start = w->out.len;
  frame_record(&w->out, w->records + 1, w->payload.data, w->payload.len);
  if (!w->out.failed)
    w->crc = crc32_z(w->crc, (const Bytef *)w->out.data + start,
                     w->out.len - start);
  w->records++;
}

static void snapshot_slot(snapshot_writer *w, const apig_instance *inst,
                          const apig_api *api, const apig_api_env *slot) {
  apig_op op = {.project_id = inst->project_id,
                .instance_id = inst->instance_id,
                .id = api->id,
                .env_id = slot->env_id};
  for (int i = slot->version_count - 1; i >= 0; i--) {
    const apig_api_version *v = slot->versions[i];
    op.kind = APIG_OP_PUBLISH;
    op.version_id = v->id;
    op.publish_id = slot->publish_id[0] ? slot->publish_id : v->id;
    op.remark = v->remark;
    op.def = v->def->json;
    op.def_len = v->def->len;
    op.time_ns = v->publish_ns;
    snapshot_op(w, &op);
  }
  memset(&op.def, 0, sizeof op.def);
  op.def_len = 0;
  if (slot->effective) {
    apig_op sw = {.kind = APIG_OP_SWITCH,
                  .project_id = inst->project_id,
                  .instance_id = inst->instance_id,
                  .id = slot->effective->id,
                  .time_ns = slot->publish_ns};
    snapshot_op(w, &sw);
  } else if (slot->version_count > 0) {
    op.kind = APIG_OP_OFFLINE;
    op.version_id = op.publish_id = op.remark = NULL;
    op.def = NULL;
    snapshot_op(w, &op);
  }
}

static void snapshot_instance(snapshot_writer *w, const apig_instance *inst) {
  apig_op op = {.kind = APIG_OP_INSTANCE_CREATE,
                .project_id = inst->project_id,
                .instance_id = inst->instance_id,
                .time_ns = inst->create_ns};
  snapshot_op(w, &op);
  for (apig_env *env = inst->envs; env; env = env->hh.next) {
    apig_op e = {APIG_OP_ENV_PUT, inst->project_id, inst->instance_id,
                 env->id, NULL, NULL, env->name, env->remark, NULL, 0,
                 NULL, NULL, env->create_ns, 0};
    snapshot_op(w, &e);
  }
  for (apig_group *g = inst->groups; g; g = g->hh.next) {
    apig_op e = {APIG_OP_GROUP_PUT, inst->project_id, inst->instance_id,
                 g->id, NULL, NULL, g->name, g->remark, NULL, 0,
                 NULL, NULL, g->register_ns, g->update_ns};
    snapshot_op(w, &e);
  }
  for (apig_api *api = inst->apis; api; api = api->hh.next) {
    apig_op e = {APIG_OP_API_PUT, inst->project_id, inst->instance_id,
                 api->id, NULL, api->group->id, NULL, NULL, api->def->json,
                 api->def->len, NULL, NULL, api->register_ns, api->update_ns};
    snapshot_op(w, &e);
  }
  for (apig_api *api = inst->apis; api; api = api->hh.next)
    for (size_t i = 0; i < api->env_count; i++)
      snapshot_slot(w, inst, api, &api->envs[i]);
}

/* Serializes the whole store into w->out. */
static void snapshot_serialize(snapshot_writer *w, const apig_store *store,
                               uint64_t seq) {
  unsigned char header[20];
  memcpy(header, "APIGSNAP", 8);
  put_u32(header + 8, SNAPSHOT_FORMAT_VERSION);
  put_u64(header + 12, seq);
  apig_buf_append(&w->out, header, sizeof header);
  w->crc = crc32(0L, Z_NULL, 0);
  for (apig_instance *inst = store->instances; inst; inst = inst->hh.next)
    snapshot_instance(w, inst);
  unsigned char trailer[12];
  put_u32(trailer, (uint32_t)w->crc);
  put_u64(trailer + 4, w->records);
  frame_record(&w->out, 0, (const char *)trailer, sizeof trailer);
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Writes data to a temporary file in the folder, flushes it, renames it
 * over the snapshot and flushes the folder. */
static int write_snapshot_file(apig_persist *persist, const char *data,
                               size_t len) {
  char name[64];
  snprintf(name, sizeof name, "snapshot.tmp.%ld", (long)getpid());
  char *tmp = join_path(persist->dir, name);
  if (!tmp)
    return -1;
  const char *step = "open";
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rc = -1;
  if (fd >= 0) {
    step = "write";
    if (write_all(fd, data, len) == 0) {
      step = "fsync";
      if (fsync(fd) == 0)
        rc = 0;
    }
    if (close(fd) != 0 && rc == 0) {
      step = "close";
      rc = -1;
    }
  }
  if (rc == 0) {
    step = "rename";
    rc = rename(tmp, persist->snapshot_path);
  }
  if (rc == 0) {
    step = "folder fsync";
    rc = fsync_dir(persist->dir);
  }
  if (rc != 0) {
    apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
              "snapshot %s failed at %s: %s", persist->snapshot_path, step,
              strerror(errno));
    unlink(tmp);
  }
  apig_free(tmp);
  return rc;
}

int apig_persist_snapshot(apig_persist *persist, const apig_store *store) {
  if (flush_journal(persist) != 0)
    return -1;
  int64_t start = apig_now_ns();
  snapshot_writer w;
  memset(&w, 0, sizeof w);
  apig_buf_init(&w.out);
  apig_buf_init(&w.payload);
  snapshot_serialize(&w, store, persist->seq);
  int rc = -1;
  if (w.out.failed)
    apig_logf(persist->logger, APIG_LOG_ERROR, NULL,
              "snapshot failed: out of memory");
  else
    rc = write_snapshot_file(persist, w.out.data, w.out.len);
  size_t bytes = w.out.len;
  apig_buf_free(&w.out);
  apig_buf_free(&w.payload);
  if (rc != 0)
    return -1;
  /* Every journal record is in the snapshot now: start a new journal. */
  if (ftruncate(persist->journal_fd, 0) != 0 ||
      lseek(persist->journal_fd, 0, SEEK_SET) < 0 ||
      fdatasync(persist->journal_fd) != 0)
    apig_logf(persist->logger, APIG_LOG_WARN, NULL,
              "truncating journal %s failed: %s; its records are skipped "
              "at start-up",
              persist->journal_path, strerror(errno));
  else
    persist->journal_size = 0;
  persist->stats.journal_bytes = (uint64_t)persist->journal_size;
  persist->stats.last_snapshot_ns = apig_now_ns();
  apig_logf(persist->logger, APIG_LOG_INFO, NULL,
            "snapshot written: %s, %zu bytes, %llu records, %.1f ms",
            persist->snapshot_path, bytes, (unsigned long long)w.records,
            (double)(apig_now_ns() - start) / 1e6);
  return 0;
}

/* ---- loading ---- */

static int read_file(const char *path, char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 1 : -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return -1;
  }
  char *buf = apig_malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  if (!buf || got != (size_t)st.st_size) {
    apig_free(buf);
    return -1;
  }
  *data = buf;
  *len = got;
  return 0;
}

/* Applies the ops of one record payload. Returns 0 or -1. */
static int apply_payload(apig_store *store, const char *payload, size_t len) {
  cJSON *root = cJSON_ParseWithLength(payload, len);
  if (!cJSON_IsArray(root)) {
    cJSON_Delete(root);
    return -1;
  }
  int count = cJSON_GetArraySize(root);
  apig_op *ops = apig_calloc(count ? (size_t)count : 1, sizeof *ops);
  int rc = ops ? 0 : -1;
  int i = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, root) {
    if (rc == 0 && apig_op_decode(item, &ops[i++]) != 0)
      rc = -1;
  }
  if (rc == 0)
    rc = apig_store_apply(store, ops, (size_t)count) == 0 ? 0 : -1;
  apig_free(ops);
  cJSON_Delete(root);
  return rc;
}

typedef struct record_view {
  uint64_t seq;
  const char *payload;
  size_t len;
} record_view;

/* Reads the record at *offset. Returns 0 (and advances), 1 for a record cut
 * short by the end of data, or -1 for a damaged record. */
static int next_record(const char *data, size_t size, size_t *offset,
                       record_view *out) {
  size_t at = *offset;
  if (size - at < RECORD_HEADER)
    return 1;
  const unsigned char *h = (const unsigned char *)data + at;
  if (get_u32(h) != RECORD_MAGIC)
    return -1;
  uint32_t len = get_u32(h + 4);
  if (len > MAX_RECORD)
    return -1;
  if (size - at - RECORD_HEADER < len)
    return 1;
  const char *payload = data + at + RECORD_HEADER;
  if (record_crc(h + 8, payload, len) != get_u32(h + 16))
    return at + RECORD_HEADER + len == size ? 1 : -1;
  out->seq = get_u64(h + 8);
  out->payload = payload;
  out->len = len;
  *offset = at + RECORD_HEADER + len;
  return 0;
}

static int load_snapshot(apig_persist *persist, apig_store *store,
                         uint64_t *seq, char **errmsg) {
  char *data;
  size_t size;
  *seq = 0;
  int rc = read_file(persist->snapshot_path, &data, &size);
  if (rc == 1)
    return 0;
  char text[512];
  const char *problem = NULL;
  size_t offset = 20;
  if (rc != 0) {
    problem = strerror(errno);
    offset = 0;
  } else if (size < 20 || memcmp(data, "APIGSNAP", 8) != 0) {
    problem = "not a snapshot file (bad magic)";
    offset = 0;
  } else if (get_u32((const unsigned char *)data + 8) !=
             SNAPSHOT_FORMAT_VERSION) {
    problem = "unsupported snapshot format version";
    offset = 8;
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t records = 0;
  while (!problem) {
    size_t start = offset;
    record_view r;
    int n = next_record(data, size, &offset, &r);
    if (n != 0) {
      problem = n == 1 ? "snapshot is truncated" : "damaged record";
      offset = start;
      break;
    }
    if (r.seq == 0) { /* the end record */
      if (r.len != 12 ||
          get_u32((const unsigned char *)r.payload) != (uint32_t)crc ||
          get_u64((const unsigned char *)r.payload + 4) != records)
        problem = "snapshot checksum mismatch";
      else if (offset != size)
        problem = "data after the end of the snapshot";
      break;
    }
    crc = crc32_z(crc, (const Bytef *)data + start, offset - start);
    records++;
    if (apply_payload(store, r.payload, r.len) != 0) {
      problem = "record does not apply";
      offset = start;
    }
  }
  if (!problem)
    *seq = get_u64((const unsigned char *)data + 12);
  apig_free(data);
  if (problem) {
    snprintf(text, sizeof text, "%s: %s at offset %zu",
             persist->snapshot_path, problem, offset);
    *errmsg = apig_strdup(text);
    return -1;
  }
  return 0;
}

static int replay_journal(apig_persist *persist, apig_store *store,
                          uint64_t snapshot_seq, char **errmsg) {
  char *data;
  size_t size;
  int rc = read_file(persist->journal_path, &data, &size);
  persist->seq = snapshot_seq;
  if (rc == 1)
    return 0;
  char text[512];
  if (rc != 0) {
    snprintf(text, sizeof text, "%s: %s", persist->journal_path,
             strerror(errno));
    *errmsg = apig_strdup(text);
    return -1;
  }
  size_t offset = 0;
  uint64_t replayed = 0;
  const char *problem = NULL;
  while (offset < size) {
    size_t start = offset;
    record_view r;
    int n = next_record(data, size, &offset, &r);
    if (n == 1) {
      apig_logf(persist->logger, APIG_LOG_WARN, NULL,
                "%s: dropping a torn last record at offset %zu (%zu bytes)",
                persist->journal_path, start, size - start);
      size = start;
      break;
    }
    if (n < 0) {
      problem = "damaged record";
      offset = start;
      break;
    }
    if (r.seq <= snapshot_seq)
      continue; /* already in the snapshot */
    if (r.seq != persist->seq + 1) {
      problem = "sequence gap";
      offset = start;
      break;
    }
    if (apply_payload(store, r.payload, r.len) != 0) {
      problem = "record does not apply";
      offset = start;
      break;
    }
    persist->seq = r.seq;
    replayed++;
  }
  apig_free(data);
  if (problem) {
    snprintf(text, sizeof text, "%s: %s at offset %zu", persist->journal_path,
             problem, offset);
    *errmsg = apig_strdup(text);
    return -1;
  }
  persist->journal_size = (off_t)size;
  if (replayed)
    apig_logf(persist->logger, APIG_LOG_INFO, NULL,
              "replayed %llu journal records from %s",
              (unsigned long long)replayed, persist->journal_path);
  return 0;
}

apig_persist *apig_persist_open(const char *dir,
                                const apig_persist_options *options,
                                const apig_logger *logger, apig_store *store,
                                char **errmsg) {
  char text[512];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(text, sizeof text, "cannot create data folder %s: %s", dir,
             strerror(errno));
    *errmsg = apig_strdup(text);
    return NULL;
  }
  apig_persist *persist = apig_calloc(1, sizeof *persist);
  if (!persist)
    return NULL;
  persist->journal_fd = -1;
  persist->options = *options;
  persist->logger = logger;
  persist->dir = apig_strdup(dir);
  persist->journal_path = join_path(dir, "journal.apig");
  persist->snapshot_path = join_path(dir, "snapshot.apig");
  uint64_t snapshot_seq = 0;
  if (!persist->dir || !persist->journal_path || !persist->snapshot_path ||
      load_snapshot(persist, store, &snapshot_seq, errmsg) != 0 ||
      replay_journal(persist, store, snapshot_seq, errmsg) != 0) {
    apig_persist_close(persist, NULL);
    return NULL;
  }
  persist->journal_fd =
      open(persist->journal_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (persist->journal_fd < 0 ||
      ftruncate(persist->journal_fd, persist->journal_size) != 0 ||
      lseek(persist->journal_fd, persist->journal_size, SEEK_SET) < 0) {
    snprintf(text, sizeof text, "cannot open journal %s: %s",
             persist->journal_path, strerror(errno));
    *errmsg = apig_strdup(text);
    apig_persist_close(persist, NULL);
    return NULL;
  }
  persist->synced_seq = persist->seq;
  persist->stats.journal_bytes = (uint64_t)persist->journal_size;
  return persist;
}

void apig_persist_close(apig_persist *persist, const apig_store *store) {
  if (!persist)
    return;
  if (store && persist->journal_fd >= 0)
    apig_persist_snapshot(persist, store);
  if (persist->journal_fd >= 0)
    close(persist->journal_fd);
  apig_free(persist->dir);
  apig_free(persist->journal_path);
  apig_free(persist->snapshot_path);
  apig_free(persist);
}
