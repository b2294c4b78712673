/* Snapshot writing and loading (layout in snapshot.h).
 *
 * Records group ops so that each one applies on its own: an instance with
 * its environments and groups, then its APIs, then the histories of the
 * APIs' environments in rounds. Round k holds the k-th history slot of
 * every API, so no record adds two slots to one API, which is what
 * apig_store_apply prepares room for.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "persist.h"

#define RECORD_TARGET (32u << 10) /* payload bytes per record */
#define WRITE_CHUNK (1u << 20)     /* bytes buffered before write() */

typedef struct writer {
  int fd;
  persist_faults *faults;
  apig_buf payload, out;
  uLong crc;
  uint64_t records, bytes;
  snapshot_result *result;
} writer;

static int writer_failed(const writer *w) { return w->result->step != NULL; }

static void writer_fail(writer *w, const char *step, int error) {
  if (!writer_failed(w)) {
    w->result->step = step;
    w->result->error = error;
  }
}

static void writer_flush(writer *w) {
  if (writer_failed(w) || w->out.len == 0)
    return;
  if (w->out.failed) {
    writer_fail(w, "serialize", ENOMEM);
    return;
  }
  if (persist_write(w->faults, w->fd, w->out.data, w->out.len) != 0)
    writer_fail(w, "write", errno);
  w->bytes += w->out.len;
  apig_buf_reset(&w->out);
}

static void writer_end_record(writer *w) {
  if (w->payload.len == 0 || writer_failed(w))
    return;
  if (w->payload.failed) {
    writer_fail(w, "serialize", ENOMEM);
    return;
  }
  size_t start = w->out.len;
  record_frame(&w->out, w->records + 1, w->payload.data, w->payload.len);
  if (!w->out.failed)
    w->crc = crc32_z(w->crc, (const Bytef *)w->out.data + start +
                                 RECORD_CRC_OFFSET, 4);
  w->records++;
  apig_buf_reset(&w->payload);
  if (w->out.len >= WRITE_CHUNK)
    writer_flush(w);
}

static void writer_op(writer *w, const apig_op *op) {
  apig_op_encode(&w->payload, op);
  if (w->payload.len >= RECORD_TARGET)
    writer_end_record(w);
}

static void write_slot(writer *w, const apig_instance *inst,
                       const apig_api *api, const apig_api_env *slot) {
  for (int i = slot->version_count - 1; i >= 0; i--) {
    const apig_api_version *v = slot->versions[i];
    int shared = v->def == api->def;
    apig_op op = {.kind = APIG_OP_PUBLISH,
                  .project_id = inst->project_id,
                  .instance_id = inst->instance_id,
                  .id = api->id,
                  .env_id = slot->env_id,
                  .version_id = v->id,
                  .publish_id = slot->effective ? slot->publish_id : v->id,
                  .remark = v->remark,
                  .def = shared ? NULL : v->def->json,
                  .def_len = shared ? 0 : v->def->len,
                  .time_ns = v->publish_ns};
    writer_op(w, &op);
  }
  /* Replaying the publishes leaves the newest version effective since its
   * own time; a SWITCH op is only needed when the state differs. */
  int replayed = slot->version_count > 0 &&
                 slot->effective == slot->versions[0] &&
                 slot->publish_ns == slot->versions[0]->publish_ns;
  if (slot->effective && !replayed) {
    apig_op sw = {.kind = APIG_OP_SWITCH,
                  .project_id = inst->project_id,
                  .instance_id = inst->instance_id,
                  .id = slot->effective->id,
                  .time_ns = slot->publish_ns};
    writer_op(w, &sw);
  } else if (!slot->effective && slot->version_count > 0) {
    apig_op off = {.kind = APIG_OP_OFFLINE,
                   .project_id = inst->project_id,
                   .instance_id = inst->instance_id,
                   .id = api->id,
                   .env_id = slot->env_id};
    writer_op(w, &off);
  }
}

static void write_definitions(writer *w, const apig_instance *inst) {
  apig_op op = {.kind = APIG_OP_INSTANCE_CREATE,
                .project_id = inst->project_id,
                .instance_id = inst->instance_id,
                .time_ns = inst->create_ns};
  writer_op(w, &op);
  for (apig_env *env = inst->envs; env; env = env->hh.next) {
    apig_op e = {.kind = APIG_OP_ENV_PUT, .project_id = inst->project_id,
                 .instance_id = inst->instance_id, .id = env->id,
                 .name = env->name, .remark = env->remark,
                 .time_ns = env->create_ns};
    writer_op(w, &e);
  }
  for (apig_group *g = inst->groups; g; g = g->hh.next) {
    apig_op e = {.kind = APIG_OP_GROUP_PUT, .project_id = inst->project_id,
                 .instance_id = inst->instance_id, .id = g->id,
                 .name = g->name, .remark = g->remark,
                 .time_ns = g->register_ns, .time2_ns = g->update_ns};
    writer_op(w, &e);
  }
  for (apig_api *api = inst->first_api; api; api = api->next) {
    apig_op e = {.kind = APIG_OP_API_PUT, .project_id = inst->project_id,
                 .instance_id = inst->instance_id, .id = api->id,
                 .group_id = api->group->id, .def = api->def->json,
                 .def_len = api->def->len, .time_ns = api->register_ns,
                 .time2_ns = api->update_ns};
    writer_op(w, &e);
  }
  writer_end_record(w);
}

static void write_histories(writer *w, const apig_instance *inst) {
  size_t rounds = 0;
  for (apig_api *api = inst->first_api; api; api = api->next)
    if (api->env_count > rounds)
      rounds = api->env_count;
  for (size_t k = 0; k < rounds && !writer_failed(w); k++) {
    for (apig_api *api = inst->first_api; api; api = api->next)
      if (k < api->env_count)
        write_slot(w, inst, api, &api->envs[k]);
    writer_end_record(w);
  }
}

/* Serializes the whole store to w->fd. */
static void write_store(writer *w, const apig_store *store, uint64_t seq) {
  unsigned char header[SNAPSHOT_HEADER];
  memcpy(header, "APIGSNAP", 8);
  put_u32(header + 8, SNAPSHOT_FORMAT_VERSION);
  put_u64(header + 12, seq);
  apig_buf_append(&w->out, header, sizeof header);
  w->crc = crc32(0L, Z_NULL, 0);
  for (apig_instance *inst = store->instances; inst; inst = inst->hh.next) {
    write_definitions(w, inst);
    write_histories(w, inst);
  }
  unsigned char trailer[12];
  put_u32(trailer, (uint32_t)w->crc);
  put_u64(trailer + 4, w->records);
  record_frame(&w->out, 0, (const char *)trailer, sizeof trailer);
  writer_flush(w);
}

/* Writes the temporary file and flushes it; returns 0 or -1. */
static int write_temp(const char *tmp, const apig_store *store, uint64_t seq,
                      persist_faults *faults, snapshot_result *result) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    result->step = "open";
    result->error = errno;
    return -1;
  }
  writer w = {.fd = fd, .faults = faults, .result = result};
  apig_buf_init(&w.payload);
  apig_buf_init(&w.out);
  persist_pause(faults, "write");
  write_store(&w, store, seq);
  apig_buf_free(&w.payload);
  apig_buf_free(&w.out);
  result->bytes = w.bytes;
  result->records = w.records;
  if (!writer_failed(&w)) {
    persist_pause(faults, "fsync");
    if (persist_fsync(faults, fd, 0) != 0)
      writer_fail(&w, "fsync", errno);
  }
  if (close(fd) != 0)
    writer_fail(&w, "close", errno);
  return writer_failed(&w) ? -1 : 0;
}

/* Waits for the go byte; returns 0 to go on, -1 to abandon. */
static int wait_for_go(int go_fd) {
  char byte = 0;
  ssize_t n;
  do
    n = read(go_fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 && byte == 'g' ? 0 : -1;
}

int snapshot_write_file(const char *dir, const char *tmp_name,
                        const char *final_name, const apig_store *store,
                        uint64_t seq, persist_faults *faults, int go_fd,
                        snapshot_result *result) {
  memset(result, 0, sizeof *result);
  char *tmp = persist_path(dir, tmp_name);
  char *final = persist_path(dir, final_name);
  int rc = -1;
  if (!tmp || !final) {
    result->step = "serialize";
    result->error = ENOMEM;
  } else if (write_temp(tmp, store, seq, faults, result) == 0) {
    if (go_fd >= 0 && wait_for_go(go_fd) != 0) {
      result->step = "wait for the journal flush";
      result->error = ECANCELED;
    } else {
      persist_pause(faults, "rename");
      rc = rename(tmp, final);
      if (rc != 0) {
        result->step = "rename";
        result->error = errno;
      }
    }
  }
  if (rc != 0 && tmp)
    unlink(tmp);
  if (rc == 0) {
    persist_pause(faults, "dirsync");
    rc = persist_fsync_dir(faults, dir);
    if (rc != 0) {
      result->step = "folder fsync";
      result->error = errno;
    }
  }
  apig_free(tmp);
  apig_free(final);
  return rc;
}

/* ---- loading ---- */

static const char *check_header(const char *data, size_t size,
                                size_t *offset, uint32_t *version) {
  *offset = 0;
  if (size < SNAPSHOT_HEADER || memcmp(data, "APIGSNAP", 8) != 0)
    return "not a snapshot file (bad magic)";
  *offset = 8;
  *version = get_u32((const unsigned char *)data + 8);
  if (*version != SNAPSHOT_FORMAT_VERSION &&
      *version != SNAPSHOT_FORMAT_WHOLE_CRC)
    return "unsupported snapshot format version";
  *offset = SNAPSHOT_HEADER;
  return NULL;
}

static const char *check_end(const record_view *r, uLong crc,
                             uint64_t records, size_t offset, size_t size) {
  const unsigned char *p = (const unsigned char *)r->payload;
  if (r->len != 12 || get_u32(p) != (uint32_t)crc ||
      get_u64(p + 4) != records)
    return "snapshot checksum mismatch";
  if (offset != size)
    return "data after the end of the snapshot";
  return NULL;
}

/* Applies every record; returns NULL or the problem, with *offset at it. */
static const char *load_records(const char *data, size_t size,
                                size_t *offset, uint32_t version,
                                apig_store *store, op_scratch *scratch) {
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t records = 0;
  for (;;) {
    size_t start = *offset;
    record_view r;
    int n = record_next(data, size, offset, &r);
    if (n != 0) {
      *offset = start;
      return n == 1 ? "snapshot is truncated" : "damaged record";
    }
    if (r.seq == 0) {
      const char *problem = check_end(&r, crc, records, *offset, size);
      if (problem)
        *offset = start;
      return problem;
    }
    if (version == SNAPSHOT_FORMAT_WHOLE_CRC)
      crc = crc32_z(crc, (const Bytef *)data + start, *offset - start);
    else
      crc = crc32_z(crc, (const Bytef *)data + start + RECORD_CRC_OFFSET,
                    4);
    records++;
    if (r.seq != records) {
      *offset = start;
      return "record out of order";
    }
    if (record_apply(store, r.payload, r.len, scratch) != 0) {
      *offset = start;
      return "record does not apply";
    }
  }
}

int snapshot_load(const char *path, apig_store *store, uint64_t *seq,
                  op_scratch *scratch, char **errmsg) {
  const char *data;
  size_t size, offset = 0;
  const char *problem = NULL;
  uint32_t version = 0;
  *seq = 0;
  if (persist_map(path, &data, &size) != 0)
    problem = strerror(errno);
  else
    problem = check_header(data, size, &offset, &version);
  if (!problem)
    problem = load_records(data, size, &offset, version, store, scratch);
  if (!problem)
    *seq = get_u64((const unsigned char *)data + 12);
  persist_unmap(data, size);
  if (!problem)
    return 0;
  char text[1024];
  snprintf(text, sizeof text, "%s: %s at offset %zu", path, problem, offset);
  *errmsg = apig_strdup(text);
  return -1;
}
