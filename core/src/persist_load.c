/* Start-up and reload: the newest snapshot, then the journal after it.
 *
 * A record cut short or failing its checksum at the very end of a journal
 * file is a torn write from a crash: it and every later journal file
 * (records that were never acknowledged, since a record is acknowledged
 * only after all before it are flushed) are dropped with a warning. Any
 * other damage stops the load with the file and offset, before any file
 * is changed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "persist_impl.h"

void persist_journal_name(char *out, size_t size, uint64_t first) {
  snprintf(out, size, "journal-%016" PRIx64 ".apig", first);
}

void persist_snapshot_name(char *out, size_t size, uint64_t seq) {
  snprintf(out, size, "snapshot-%016" PRIx64 ".apig", seq);
}

typedef struct seq_list {
  uint64_t *items;
  size_t count, cap;
} seq_list;

static int seq_push(seq_list *list, uint64_t value) {
  if (list->count == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 16;
    uint64_t *items = apig_realloc(list->items, cap * sizeof *items);
    if (!items)
      return -1;
    list->items = items;
    list->cap = cap;
  }
  list->items[list->count++] = value;
  return 0;
}

static int compare_seq(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Matches PREFIX + 16 lowercase hex digits + SUFFIX exactly. */
static int parse_name(const char *name, const char *prefix,
                      const char *suffix, uint64_t *seq) {
  size_t plen = strlen(prefix), slen = strlen(suffix);
  if (strlen(name) != plen + 16 + slen || strncmp(name, prefix, plen) != 0 ||
      strcmp(name + plen + 16, suffix) != 0)
    return 0;
  uint64_t value = 0;
  for (size_t i = 0; i < 16; i++) {
    char c = name[plen + i];
    int digit = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
    if (digit < 0)
      return 0;
    value = value << 4 | (uint64_t)digit;
  }
  *seq = value;
  return 1;
}

typedef struct folder {
  seq_list snapshots, journals;
  int legacy; /* files of the JSON record format */
} folder;

static int scan_folder(const char *dir, folder *f) {
  memset(f, 0, sizeof *f);
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  struct dirent *entry;
  int rc = 0;
  while (rc == 0 && (entry = readdir(d)) != NULL) {
    uint64_t seq;
    if (parse_name(entry->d_name, "snapshot-", ".apig", &seq))
      rc = seq_push(&f->snapshots, seq);
    else if (parse_name(entry->d_name, "journal-", ".apig", &seq))
      rc = seq_push(&f->journals, seq);
    else if (strcmp(entry->d_name, "journal.apig") == 0 ||
             strcmp(entry->d_name, "snapshot.apig") == 0)
      f->legacy = 1;
  }
  closedir(d);
  if (rc != 0) {
    errno = ENOMEM;
    return -1;
  }
  /* An empty list has a NULL array, which qsort must not be given. */
  if (f->snapshots.count > 1)
    qsort(f->snapshots.items, f->snapshots.count, sizeof(uint64_t),
          compare_seq);
  if (f->journals.count > 1)
    qsort(f->journals.items, f->journals.count, sizeof(uint64_t),
          compare_seq);
  return 0;
}

static void folder_free(folder *f) {
  apig_free(f->snapshots.items);
  apig_free(f->journals.items);
}

typedef struct load_plan {
  uint64_t limit;          /* records after it are cut */
  int recovering;          /* reload after a failed flush */
  uint64_t snapshot_seq;
  uint64_t seq;            /* last record applied */
  uint64_t replayed;
  int cut;                 /* the journal ends early: see cut_file */
  uint64_t cut_file;
  size_t cut_offset;
  int have_last;           /* a journal file holds records after the
                              snapshot; last_file is the newest kept */
  uint64_t last_file;
  size_t last_size;
  uint64_t journal_bytes;
} load_plan;

static int fail(char **errmsg, const char *dir, const char *name,
                const char *problem, size_t offset) {
  char text[1024];
  snprintf(text, sizeof text, "%s/%s: %s at offset %zu", dir, name, problem,
           offset);
  *errmsg = apig_strdup(text);
  return -1;
}

/* Is journal file index i covered by the snapshot? Its records all come
 * before the next file's first, and the snapshot holds those. */
static int journal_covered(const folder *f, size_t i, uint64_t snapshot) {
  return i + 1 < f->journals.count &&
         f->journals.items[i + 1] <= snapshot + 1;
}

static void cut_here(apig_persist *p, load_plan *plan, const char *name,
                     uint64_t first, size_t offset, size_t size, int torn) {
  if (torn && !plan->recovering)
    apig_logf(p->logger, APIG_LOG_WARN, NULL,
              "%s/%s: dropping a torn last record at offset %zu (%zu "
              "bytes) and any later journal file",
              p->dir, name, offset, size - offset);
  plan->cut = 1;
  plan->cut_file = first;
  plan->cut_offset = offset;
}

/* Replays one journal file whose records start at *next. */
static int replay_file(apig_persist *p, apig_store *store, load_plan *plan,
                       uint64_t first, uint64_t *next, char **errmsg) {
  char name[64];
  persist_journal_name(name, sizeof name, first);
  char *path = persist_path(p->dir, name);
  const char *data = NULL;
  size_t size = 0, offset = 0;
  int rc = path ? persist_map(path, &data, &size) : -1;
  apig_free(path);
  if (rc != 0)
    return fail(errmsg, p->dir, name, strerror(errno), 0);
  const char *problem = NULL;
  while (offset < size && !problem) {
    size_t start = offset;
    record_view r;
    int n = record_next(data, size, &offset, &r);
    if (n == 1) {
      cut_here(p, plan, name, first, start, size, 1);
      break;
    }
    if (n < 0 || r.seq != *next) {
      problem = n < 0 ? "damaged record" : "record out of sequence";
      offset = start;
      break;
    }
    (*next)++;
    if (r.seq <= plan->snapshot_seq)
      continue;
    if (r.seq > plan->limit) {
      cut_here(p, plan, name, first, start, size, 0);
      break;
    }
    if (record_apply(store, r.payload, r.len, &p->scratch) != 0) {
      problem = "record does not apply";
      offset = start;
      break;
    }
    plan->seq = r.seq;
    plan->replayed++;
  }
  persist_unmap(data, size);
  if (problem)
    return fail(errmsg, p->dir, name, problem, offset);
  plan->have_last = 1;
  plan->last_file = first;
  plan->last_size = plan->cut ? plan->cut_offset : size;
  plan->journal_bytes += plan->last_size;
  return 0;
}

static int replay_journals(apig_persist *p, apig_store *store,
                           const folder *f, load_plan *plan, char **errmsg) {
  uint64_t snapshot = plan->snapshot_seq, next = 0;
  int started = 0;
  plan->seq = snapshot;
  for (size_t i = 0; i < f->journals.count && !plan->cut; i++) {
    if (journal_covered(f, i, snapshot))
      continue;
    uint64_t first = f->journals.items[i];
    char name[64];
    persist_journal_name(name, sizeof name, first);
    if (!started && first > snapshot + 1)
      return fail(errmsg, p->dir, name,
                  "journal starts after the records the snapshot holds "
                  "(records are missing)",
                  0);
    if (started && first != next)
      return fail(errmsg, p->dir, name,
                  "journal file does not follow the previous one", 0);
    if (!started)
      next = first;
    started = 1;
    if (replay_file(p, store, plan, first, &next, errmsg) != 0)
      return -1;
  }
  return 0;
}

static int unlink_name(const char *dir, const char *name) {
  char *path = persist_path(dir, name);
  int rc = path ? unlink(path) : -1;
  apig_free(path);
  return rc;
}

static int truncate_cut(apig_persist *p, const load_plan *plan,
                        char **errmsg) {
  char name[64];
  persist_journal_name(name, sizeof name, plan->cut_file);
  char *path = persist_path(p->dir, name);
  int fd = path ? open(path, O_WRONLY | O_CLOEXEC) : -1;
  apig_free(path);
  if (fd < 0 || ftruncate(fd, (off_t)plan->cut_offset) != 0 ||
      persist_fsync(&p->faults, fd, 1) != 0) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    return fail(errmsg, p->dir, name, strerror(saved), plan->cut_offset);
  }
  close(fd);
  return 0;
}

/* Deletes what the load left behind: journal files after a cut, files
 * the snapshot covers, older snapshots and temporary files. */
static void remove_stale(apig_persist *p, const folder *f,
                         const load_plan *plan) {
  char name[64];
  for (size_t i = 0; i < f->journals.count; i++) {
    uint64_t first = f->journals.items[i];
    int dropped = plan->cut && first > plan->cut_file;
    if (!dropped && !journal_covered(f, i, plan->snapshot_seq))
      continue;
    persist_journal_name(name, sizeof name, first);
    if (dropped)
      apig_logf(p->logger, APIG_LOG_WARN, NULL,
                "%s/%s: dropping unacknowledged records after the cut",
                p->dir, name);
    unlink_name(p->dir, name);
  }
  for (size_t i = 0; i + 1 < f->snapshots.count; i++) {
    persist_snapshot_name(name, sizeof name, f->snapshots.items[i]);
    unlink_name(p->dir, name);
  }
  DIR *d = opendir(p->dir);
  struct dirent *entry;
  while (d && (entry = readdir(d)) != NULL)
    if (strncmp(entry->d_name, "snapshot-", 9) == 0 &&
        strstr(entry->d_name, ".tmp-"))
      unlink_name(p->dir, entry->d_name);
  if (d)
    closedir(d);
}

/* Opens the journal file that takes the next appends. */
static int open_journal(apig_persist *p, const load_plan *plan,
                        char **errmsg) {
  int reuse = plan->have_last && !plan->recovering;
  uint64_t first = reuse ? plan->last_file : plan->seq + 1;
  char name[64];
  persist_journal_name(name, sizeof name, first);
  char *path = persist_path(p->dir, name);
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (reuse ? 0 : O_TRUNC);
  int fd = path ? open(path, flags, 0600) : -1;
  apig_free(path);
  off_t size = reuse ? (off_t)plan->last_size : 0;
  if (fd < 0 || lseek(fd, size, SEEK_SET) < 0) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    return fail(errmsg, p->dir, name, strerror(saved), 0);
  }
  p->journal_fd = fd;
  p->journal_first = first;
  p->journal_size = p->last_record_offset = size;
  p->dir_dirty = !reuse;
  return 0;
}

static int load_snapshot(apig_persist *p, apig_store *store, const folder *f,
                         load_plan *plan, char **errmsg) {
  if (f->snapshots.count == 0)
    return 0;
  uint64_t named = f->snapshots.items[f->snapshots.count - 1];
  char name[64];
  persist_snapshot_name(name, sizeof name, named);
  char *path = persist_path(p->dir, name);
  if (!path)
    return fail(errmsg, p->dir, name, strerror(ENOMEM), 0);
  uint64_t seq = 0;
  int rc = snapshot_load(path, store, &seq, &p->scratch, errmsg);
  apig_free(path);
  if (rc != 0)
    return -1;
  if (seq != named || seq > plan->limit)
    return fail(errmsg, p->dir, name,
                "the record number inside does not match the name", 12);
  plan->snapshot_seq = seq;
  return 0;
}

/* Loads the folder into store, then fixes up the files: nothing is
 * changed on disk unless the whole load succeeded. */
static int load_folder(apig_persist *p, apig_store *store, load_plan *plan,
                       char **errmsg) {
  folder f;
  if (scan_folder(p->dir, &f) != 0) {
    char text[1024];
    snprintf(text, sizeof text, "cannot read data folder %s: %s", p->dir,
             strerror(errno));
    *errmsg = apig_strdup(text);
    folder_free(&f);
    return -1;
  }
  int rc = -1;
  if (f.legacy)
    fail(errmsg, p->dir, "journal.apig",
         "files of an older format (JSON records); move them away or "
         "start with an empty data folder",
         0);
  else if (load_snapshot(p, store, &f, plan, errmsg) == 0 &&
           replay_journals(p, store, &f, plan, errmsg) == 0 &&
           (!plan->cut || truncate_cut(p, plan, errmsg) == 0))
    rc = 0;
  if (rc == 0) {
    remove_stale(p, &f, plan);
    if (persist_fsync_dir(&p->faults, p->dir) != 0)
      rc = fail(errmsg, p->dir, ".", strerror(errno), 0);
    else
      rc = open_journal(p, plan, errmsg);
  }
  folder_free(&f);
  if (rc == 0) {
    p->seq = p->synced_seq = plan->seq;
    p->snapshot_seq = plan->snapshot_seq;
    p->bytes_since_snapshot = plan->journal_bytes;
    p->stats.journal_bytes = plan->journal_bytes;
  }
  return rc;
}

/* Takes an exclusive flock on the folder's "lock" file, so that a second
 * process (or a second handle) cannot append to the same journal and lose
 * the first one's acknowledged changes. The lock goes with the descriptor:
 * it is released when the handle closes or the process dies. Returns the
 * descriptor, or -1 with a message in *errmsg. */
static int lock_folder(const char *dir, char **errmsg) {
  char path[4096], text[4200];
  snprintf(path, sizeof path, "%s/lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(text, sizeof text, "cannot open %s: %s", path, strerror(errno));
    *errmsg = apig_strdup(text);
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    snprintf(text, sizeof text,
             busy ? "data folder %s is in use by another server or handle; "
                    "stop it or choose another data folder"
                  : "cannot lock data folder %s: %s",
             dir, strerror(errno));
    *errmsg = apig_strdup(text);
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  /* The pid is for people reading the file; the lock is what counts, so a
   * failed write of it changes nothing. */
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
    errno = 0;
  return fd;
}

apig_persist *apig_persist_open(const char *dir,
                                const apig_persist_options *options,
                                const apig_logger *logger, apig_store *store,
                                char **errmsg) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    char text[1024];
    snprintf(text, sizeof text, "cannot create data folder %s: %s", dir,
             strerror(errno));
    *errmsg = apig_strdup(text);
    return NULL;
  }
  int lock_fd = lock_folder(dir, errmsg);
  if (lock_fd < 0)
    return NULL;
  apig_persist *p = apig_calloc(1, sizeof *p);
  if (!p || !(p->dir = apig_strdup(dir))) {
    apig_free(p);
    close(lock_fd);
    return NULL;
  }
  p->lock_fd = lock_fd;
  p->journal_fd = -1;
  p->options = *options;
  p->logger = logger;
  p->store = store;
  persist_faults_init(&p->faults);
  int64_t start = apig_now_ns();
  load_plan plan = {.limit = UINT64_MAX};
  if (load_folder(p, store, &plan, errmsg) != 0) {
    persist_close_files(p);
    close(p->lock_fd);
    apig_free(p->scratch.ops);
    apig_free(p->dir);
    apig_free(p);
    return NULL;
  }
  apig_logf(logger, APIG_LOG_INFO, NULL,
            "loaded %s: snapshot of record %" PRIu64 " and %" PRIu64
            " journal records in %.1f ms",
            dir, plan.snapshot_seq, plan.replayed,
            (double)(apig_now_ns() - start) / 1e6);
  return p;
}

int persist_reload(apig_persist *p) {
  persist_close_files(p);
  apig_store fresh;
  apig_store_init(&fresh);
  char *errmsg = NULL;
  load_plan plan = {.limit = p->synced_seq, .recovering = 1};
  if (load_folder(p, &fresh, &plan, &errmsg) != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "reloading the state after a failed flush failed: %s; "
              "changes are rejected until a restart",
              errmsg ? errmsg : "out of memory");
    apig_free(errmsg);
    apig_store_free(&fresh);
    persist_close_files(p);
    p->broken = 1;
    return -1;
  }
  apig_store_free(p->store);
  *p->store = fresh;
  return 0;
}

void persist_snapshot_done(apig_persist *p, uint64_t seq, uint64_t bytes,
                           double ms) {
  p->snapshot_seq = seq;
  p->stats.snapshots++;
  p->stats.last_snapshot_ns = apig_now_ns();
  p->stats.last_snapshot_bytes = bytes;
  p->stats.last_snapshot_duration_ns = (int64_t)(ms * 1e6);
  p->stats.journal_bytes = p->bytes_since_snapshot;
  apig_logf(p->logger, APIG_LOG_INFO, NULL,
            "snapshot of record %" PRIu64 " written to %s: %" PRIu64
            " bytes in %.1f ms",
            seq, p->dir, bytes, ms);
  folder f;
  if (scan_folder(p->dir, &f) != 0) {
    folder_free(&f);
    return;
  }
  char name[64];
  for (size_t i = 0; i < f.journals.count; i++)
    if (f.journals.items[i] <= seq) {
      persist_journal_name(name, sizeof name, f.journals.items[i]);
      unlink_name(p->dir, name);
    }
  for (size_t i = 0; i < f.snapshots.count; i++)
    if (f.snapshots.items[i] < seq) {
      persist_snapshot_name(name, sizeof name, f.snapshots.items[i]);
      unlink_name(p->dir, name);
    }
  folder_free(&f);
}

void persist_close_files(apig_persist *p) {
  if (p->journal_fd >= 0)
    close(p->journal_fd);
  p->journal_fd = -1;
  for (size_t i = 0; i < p->retired_count; i++)
    close(p->retired[i]);
  p->retired_count = 0;
}
