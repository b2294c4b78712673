/* Record framing, file mapping and checked I/O for journal and snapshots. */
#include "persist_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "persist.h"

void persist_faults_init(persist_faults *faults) {
  memset(faults, 0, sizeof *faults);
  const char *spec = getenv("APIG_FAULT_INJECT");
  while (spec && *spec) {
    size_t len = strcspn(spec, ",");
    unsigned long long n = 0;
    if (sscanf(spec, "write:%llu", &n) == 1)
      faults->write_at = n;
    else if (sscanf(spec, "fsync:%llu", &n) == 1)
      faults->fsync_at = n;
    else if (strncmp(spec, "pause:", 6) == 0 && len - 6 < 16)
      snprintf(faults->pause_step, sizeof faults->pause_step, "%.*s",
               (int)(len - 6), spec + 6);
    spec += len;
    if (*spec == ',')
      spec++;
  }
}

int persist_write(persist_faults *faults, int fd, const void *data,
                  size_t len) {
  if (faults->write_at && ++faults->writes == faults->write_at) {
    errno = ENOSPC;
    return -1;
  }
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0) {
      errno = EIO;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int persist_fsync(persist_faults *faults, int fd, int data_only) {
  if (faults->fsync_at && ++faults->fsyncs == faults->fsync_at) {
    errno = EIO;
    return -1;
  }
  return data_only ? fdatasync(fd) : fsync(fd);
}

int persist_fsync_dir(persist_faults *faults, const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = persist_fsync(faults, fd, 0);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

void persist_pause(const persist_faults *faults, const char *step) {
  if (faults->pause_step[0] && strcmp(faults->pause_step, step) == 0)
    sleep(30);
}

char *persist_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *path = apig_malloc(a + b + 2);
  if (path) {
    memcpy(path, dir, a);
    path[a] = '/';
    memcpy(path + a + 1, name, b + 1);
  }
  return path;
}

int persist_map(const char *path, const char **data, size_t *size) {
  *data = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 1 : -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  if (st.st_size == 0) {
    close(fd);
    return 0;
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int saved = errno;
  close(fd);
  if (map == MAP_FAILED) {
    errno = saved;
    return -1;
  }
  madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
  *data = map;
  *size = (size_t)st.st_size;
  return 0;
}

void persist_unmap(const char *data, size_t size) {
  if (data)
    munmap((void *)data, size);
}

void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t record_crc(const unsigned char *seq_bytes, const char *payload,
                           size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, seq_bytes, 8);
  crc = crc32_z(crc, (const Bytef *)payload, len);
  return (uint32_t)crc;
}

void record_frame(apig_buf *out, uint64_t seq, const char *payload,
                  size_t len) {
  unsigned char header[RECORD_HEADER];
  put_u32(header, RECORD_MAGIC);
  put_u32(header + 4, (uint32_t)len);
  put_u64(header + 8, seq);
  put_u32(header + RECORD_CRC_OFFSET,
          record_crc(header + 8, payload, len));
  apig_buf_append(out, header, sizeof header);
  apig_buf_append(out, payload, len);
}

int record_next(const char *data, size_t size, size_t *offset,
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
  if (record_crc(h + 8, payload, len) != get_u32(h + RECORD_CRC_OFFSET))
    return at + RECORD_HEADER + len == size ? 1 : -1;
  out->seq = get_u64(h + 8);
  out->payload = payload;
  out->len = len;
  *offset = at + RECORD_HEADER + len;
  return 0;
}

static int scratch_push(op_scratch *scratch, size_t count) {
  if (count < scratch->cap)
    return 0;
  size_t cap = scratch->cap ? scratch->cap * 2 : 256;
  apig_op *ops = apig_realloc(scratch->ops, cap * sizeof *ops);
  if (!ops)
    return -1;
  scratch->ops = ops;
  scratch->cap = cap;
  return 0;
}

int record_apply(apig_store *store, const char *payload, size_t len,
                 op_scratch *scratch) {
  size_t count = 0, offset = 0;
  while (offset < len) {
    if (scratch_push(scratch, count) != 0 ||
        apig_op_decode(payload, len, &offset, &scratch->ops[count]) != 0)
      return -1;
    count++;
  }
  if (count == 0)
    return -1;
  return apig_store_apply(store, scratch->ops, count) == 0 ? 0 : -1;
}
