/* Journal files, group commit, start-up recovery and snapshot scheduling.
 *
 * Files in the data folder, SEQ being 16 lowercase hex digits:
 *   journal-SEQ.apig    records from sequence SEQ on, one per change
 *   snapshot-SEQ.apig   the whole store as of record SEQ (see snapshot.h)
 *   snapshot-SEQ.apig.tmp-PID-N   a snapshot being written
 * Invariant: the newest snapshot S plus the journal records after S, read
 * in sequence order across the journal files, rebuild the state. Each
 * snapshot starts a new journal file at S + 1, so once the snapshot is
 * durable the journal files named SEQ <= S and older snapshots are deleted.
 *
 * A change is answered once its record is flushed. With a loop attached,
 * one fdatasync at a time runs on the thread pool and covers every record
 * written before it started; records written meanwhile share the next one.
 * A flush that fails leaves the memory ahead of the disk, so the store is
 * rebuilt from the files cut after the last flushed record (persist_load.c)
 * and every change waiting for that flush is answered with an error.
 *
 * Background snapshots fork(): the child writes the copy-on-write view of
 * the store and waits for a go byte before its rename, which the parent
 * sends once every record the snapshot holds is flushed; a failed flush
 * sends a stop byte instead, so no snapshot ever holds a change that the
 * journal lost.
 */
#define _GNU_SOURCE
#include "persist_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"

#define SNAPSHOT_NICE 10 /* the snapshot child's nice value */

/* ---- journal writes ---- */

uint64_t apig_persist_append(apig_persist *p, const apig_op *ops,
                             size_t count) {
  if (p->broken || p->journal_fd < 0)
    return 0;
  apig_buf payload, record;
  apig_buf_init(&payload);
  apig_buf_init(&record);
  for (size_t i = 0; i < count; i++)
    apig_op_encode(&payload, &ops[i]);
  uint64_t seq = p->seq + 1;
  record_frame(&record, seq, payload.data, payload.len);
  int failed = payload.failed || record.failed || payload.len > MAX_RECORD;
  int deferred = p->loop && p->options.fsync_mode == APIG_FSYNC_ALWAYS;
  if (!failed && deferred) {
    if (apig_buf_reserve(&p->unwritten, record.len) == 0)
      apig_buf_append(&p->unwritten, record.data, record.len);
    else
      failed = 1;
    p->unwritten.failed = 0; /* the records already held stay valid */
  } else if (!failed && persist_write(&p->faults, p->journal_fd, record.data,
                                      record.len) != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "journal write to %s/journal-%016" PRIx64 ".apig failed: %s",
              p->dir, p->journal_first, strerror(errno));
    persist_cut_journal(p, p->journal_size);
    failed = 1;
  }
  size_t written = record.len;
  apig_buf_free(&payload);
  apig_buf_free(&record);
  if (failed)
    return 0;
  p->last_record_offset = p->journal_size;
  p->journal_size += (off_t)written;
  p->bytes_since_snapshot += written;
  p->stats.journal_bytes = p->bytes_since_snapshot;
  p->seq = seq;
  if (p->options.fsync_mode == APIG_FSYNC_OFF)
    p->synced_seq = seq;
  persist_check_journal_size(p);
  return seq;
}

/* Writes the records held in p->unwritten. Returns 0, or -1 after logging
 * and cutting the file back to where they started; the caller then treats
 * it as a failed flush. */
static int write_unwritten(apig_persist *p) {
  if (p->unwritten.len == 0 || p->journal_fd < 0)
    return 0;
  off_t start = p->journal_size - (off_t)p->unwritten.len;
  int rc = persist_write(&p->faults, p->journal_fd, p->unwritten.data,
                         p->unwritten.len);
  if (rc != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "journal write to %s/journal-%016" PRIx64 ".apig failed: %s",
              p->dir, p->journal_first, strerror(errno));
    persist_cut_journal(p, start);
  }
  apig_buf_reset(&p->unwritten);
  return rc;
}

/* Cuts the current journal file back to size, removing a partly written
 * record. When even that fails the file holds garbage before any later
 * record, so appends stop until a restart. */
void persist_cut_journal(apig_persist *p, off_t size) {
  if (ftruncate(p->journal_fd, size) == 0 &&
      lseek(p->journal_fd, size, SEEK_SET) >= 0)
    return;
  apig_logf(p->logger, APIG_LOG_ERROR, NULL,
            "cutting journal %s/journal-%016" PRIx64 ".apig back to %lld "
            "bytes failed: %s; changes are rejected until a restart",
            p->dir, p->journal_first, (long long)size, strerror(errno));
  p->broken = 1;
}

void apig_persist_rollback(apig_persist *p, uint64_t seq) {
  if (seq != p->seq || seq == 0 || p->journal_first > seq)
    return;
  size_t record = (size_t)(p->journal_size - p->last_record_offset);
  if (p->unwritten.len >= record) {
    p->unwritten.len -= record;
    if (p->unwritten.data)
      p->unwritten.data[p->unwritten.len] = '\0';
  } else {
    persist_cut_journal(p, p->last_record_offset);
    if (p->broken)
      return;
  }
  p->bytes_since_snapshot -= (uint64_t)(p->journal_size -
                                        p->last_record_offset);
  p->journal_size = p->last_record_offset;
  p->seq--;
  if (p->synced_seq > p->seq)
    p->synced_seq = p->seq;
}

/* Opens journal-(seq + 1) for the records after the current one, unless
 * the current file is still empty. The old file stays open until a flush
 * has covered its tail. */
int persist_rotate_journal(apig_persist *p) {
  if (p->journal_fd >= 0 && p->journal_first == p->seq + 1)
    return 0;
  if (p->retired_count == MAX_RETIRED && persist_flush_sync(p) != 0)
    return -1;
  /* Records held for the old file go into it before it retires. */
  if (write_unwritten(p) != 0) {
    persist_flush_failed(p);
    return -1;
  }
  char name[64];
  persist_journal_name(name, sizeof name, p->seq + 1);
  char *path = persist_path(p->dir, name);
  int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                : -1;
  if (fd < 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "creating journal %s failed: %s", path ? path : name,
              strerror(path ? errno : ENOMEM));
    apig_free(path);
    return -1;
  }
  apig_free(path);
  if (p->journal_fd >= 0)
    p->retired[p->retired_count++] = p->journal_fd;
  p->journal_fd = fd;
  p->journal_first = p->seq + 1;
  p->journal_size = p->last_record_offset = 0;
  p->dir_dirty = 1;
  return 0;
}

/* ---- flushing ---- */

static void close_retired(apig_persist *p, size_t count) {
  for (size_t i = 0; i < count; i++)
    close(p->retired[i]);
  memmove(p->retired, p->retired + count,
          (p->retired_count - count) * sizeof p->retired[0]);
  p->retired_count -= count;
}

/* fdatasync of each fd, then the folder when sync_dir. */
static int flush_fds(persist_faults *faults, const char *dir, const int *fds,
                     size_t count, int sync_dir, int *error) {
  for (size_t i = 0; i < count; i++)
    if (persist_fsync(faults, fds[i], 1) != 0) {
      *error = errno;
      return -1;
    }
  if (sync_dir && persist_fsync_dir(faults, dir) != 0) {
    *error = errno;
    return -1;
  }
  return 0;
}

int persist_flush_sync(apig_persist *p) {
  if (p->options.fsync_mode == APIG_FSYNC_OFF || p->journal_fd < 0) {
    p->synced_seq = p->seq;
    return 0;
  }
  if (write_unwritten(p) != 0) {
    persist_flush_failed(p);
    return -1;
  }
  int fds[MAX_RETIRED + 1];
  size_t n = p->retired_count;
  memcpy(fds, p->retired, n * sizeof fds[0]);
  fds[n++] = p->journal_fd;
  int64_t start = apig_now_ns();
  int error = 0;
  if (flush_fds(&p->faults, p->dir, fds, n, p->dir_dirty, &error) != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "journal flush in %s failed: %s", p->dir, strerror(error));
    persist_flush_failed(p);
    return -1;
  }
  p->stats.flushes++;
  p->stats.flush_ns_total += (uint64_t)(apig_now_ns() - start);
  p->dir_dirty = 0;
  close_retired(p, p->retired_count);
  p->synced_seq = p->seq;
  persist_send_go(p);
  return 0;
}

static int waiter_push(apig_persist *p, uint64_t seq, apig_durable_cb cb,
                       void *arg) {
  if (p->waiter_count == p->waiter_cap) {
    size_t cap = p->waiter_cap ? p->waiter_cap * 2 : 64;
    persist_waiter *w = apig_realloc(p->waiters, cap * sizeof *w);
    if (!w)
      return -1;
    p->waiters = w;
    p->waiter_cap = cap;
  }
  p->waiters[p->waiter_count++] = (persist_waiter){seq, cb, arg};
  return 0;
}

/* Calls back the waiters whose record is flushed (all of them, with -1,
 * when failed). Callbacks may queue new waiters meanwhile. */
void persist_notify(apig_persist *p, int failed) {
  persist_waiter *batch = p->waiters;
  size_t count = p->waiter_count;
  p->waiters = NULL;
  p->waiter_count = p->waiter_cap = 0;
  for (size_t i = 0; i < count; i++) {
    persist_waiter w = batch[i];
    if (failed)
      w.cb(w.arg, -1);
    else if (w.seq <= p->synced_seq)
      w.cb(w.arg, 0);
    else if (waiter_push(p, w.seq, w.cb, w.arg) != 0)
      w.cb(w.arg, persist_flush_sync(p));
  }
  apig_free(batch);
}

static void flush_work(uv_work_t *work) {
  persist_flush_job *job = work->data;
  int64_t start = apig_now_ns();
  job->rc = flush_fds(job->faults, job->dir, job->fds, job->fd_count,
                      job->sync_dir, &job->error);
  job->ns = apig_now_ns() - start;
}

static void start_flush(apig_persist *p);

static void flush_done(uv_work_t *work, int status) {
  apig_persist *p = ((persist_flush_job *)work->data)->persist;
  persist_flush_job *job = &p->job;
  const apig_allocator *previous = apig_alloc_enter(p->options.allocator);
  p->flushing = 0;
  if (status != 0 || job->rc != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "journal flush in %s failed: %s", p->dir,
              strerror(status != 0 ? ECANCELED : job->error));
    p->dir_dirty |= job->sync_dir;
    persist_flush_failed(p);
  } else {
    p->stats.flushes++;
    p->stats.flush_ns_total += (uint64_t)job->ns;
    close_retired(p, job->retired_count);
    if (job->target_seq > p->synced_seq)
      p->synced_seq = job->target_seq;
    persist_send_go(p);
    persist_notify(p, 0);
  }
  if (p->waiter_count > 0 && !p->flushing) {
    if (p->loop)
      start_flush(p);
    else
      persist_notify(p, persist_flush_sync(p) != 0);
  }
  apig_alloc_leave(previous);
}

static void start_flush(apig_persist *p) {
  if (write_unwritten(p) != 0) {
    persist_flush_failed(p);
    return;
  }
  persist_flush_job *job = &p->job;
  size_t n = p->retired_count;
  memcpy(job->fds, p->retired, n * sizeof job->fds[0]);
  job->retired_count = n;
  job->fds[n++] = p->journal_fd;
  job->fd_count = n;
  job->sync_dir = p->dir_dirty;
  p->dir_dirty = 0;
  job->target_seq = p->seq;
  job->faults = &p->faults;
  job->dir = p->dir;
  job->persist = p;
  job->work.data = job;
  p->flushing = 1;
  if (uv_queue_work(p->loop, &job->work, flush_work, flush_done) != 0) {
    p->flushing = 0;
    p->dir_dirty |= job->sync_dir;
    persist_notify(p, persist_flush_sync(p) != 0);
  }
}

void apig_persist_wait(apig_persist *p, uint64_t seq, apig_durable_cb cb,
                       void *arg) {
  if (seq <= p->synced_seq) {
    cb(arg, 0);
    return;
  }
  if (!p->loop) {
    int rc = persist_flush_sync(p);
    if (rc == 0 && !p->loop)
      persist_check_journal_size(p);
    cb(arg, rc);
    return;
  }
  if (waiter_push(p, seq, cb, arg) != 0) {
    cb(arg, persist_flush_sync(p));
    return;
  }
  if (!p->flushing)
    start_flush(p);
}

/* A flush failed: stop a snapshot that holds unflushed records, rebuild
 * the store from what the files hold up to the last flushed record, and
 * answer every waiting change with an error. */
void persist_flush_failed(apig_persist *p) {
  if (p->child > 0 && !p->go_sent)
    persist_stop_child(p, 0);
  apig_buf_reset(&p->unwritten); /* the reload cuts what they follow */
  uint64_t lost = p->seq - p->synced_seq;
  if (persist_reload(p) == 0)
    apig_logf(p->logger, APIG_LOG_WARN, NULL,
              "state reloaded from %s up to record %" PRIu64 "; %" PRIu64
              " unflushed changes discarded",
              p->dir, p->synced_seq, lost);
  persist_notify(p, 1);
}

/* ---- background snapshots ---- */

void persist_send_go(apig_persist *p) {
  if (p->child <= 0 || p->go_sent || p->synced_seq < p->child_seq)
    return;
  if (write(p->child_go_fd, "g", 1) != 1)
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "telling snapshot child %d to finish failed: %s",
              (int)p->child, strerror(errno));
  p->go_sent = 1;
}

/* Closes every descriptor of the child except 0-2 and the two pipes. */
static void close_other_fds(int a, int b) {
  int low = a < b ? a : b, high = a < b ? b : a;
  if (low > 3)
    close_range(3, (unsigned)low - 1, 0);
  if (high > low + 1)
    close_range((unsigned)low + 1, (unsigned)high - 1, 0);
  close_range((unsigned)high + 1, ~0u, 0);
}

/* NOTE: the child allocates (record buffers) after fork(). glibc's malloc
 * is safe there; a host allocator that takes locks from other threads may
 * not be. */
static void child_main(apig_persist *p, pid_t parent, int go_fd,
                       int report_fd, const char *tmp, const char *final) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(3);
  int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD, SIGPIPE};
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    signal(signals[i], SIG_DFL);
  close_other_fds(go_fd, report_fd);
  /* A lower priority than the server's, so that on a busy machine the
   * snapshot takes the CPU time that requests leave over. If this fails,
   * the snapshot is still written at the normal priority. */
  (void)setpriority(PRIO_PROCESS, 0, SNAPSHOT_NICE);
  persist_child_report report;
  memset(&report, 0, sizeof report);
  snapshot_result result;
  int rc = snapshot_write_file(p->dir, tmp, final, p->store, p->child_seq,
                               &p->faults, go_fd, &result);
  report.ok = rc == 0;
  report.error = result.error;
  report.bytes = result.bytes;
  report.records = result.records;
  snprintf(report.step, sizeof report.step, "%s",
           result.step ? result.step : "");
  ssize_t ignored = write(report_fd, &report, sizeof report);
  (void)ignored;
  _exit(rc == 0 ? 0 : 1);
}

static int fork_child(apig_persist *p, const char *tmp, const char *final) {
  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(report, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(go[0]);
    close(go[1]);
    return -1;
  }
  pid_t parent = getpid();
  int64_t start = apig_now_ns();
  pid_t pid = fork();
  if (pid == 0)
    child_main(p, parent, go[0], report[1], tmp, final);
  int saved = errno;
  p->stats.last_fork_ns = apig_now_ns() - start;
  close(go[0]);
  close(report[1]);
  if (pid < 0) {
    close(go[1]);
    close(report[0]);
    errno = saved;
    return -1;
  }
  p->child = pid;
  p->child_go_fd = go[1];
  p->child_report_fd = report[0];
  p->go_sent = 0;
  return 0;
}

int persist_start_child(apig_persist *p) {
  if (p->child > 0) {
    apig_logf(p->logger, APIG_LOG_INFO, NULL,
              "snapshot requested while snapshot child %d (record %" PRIu64
              ") runs; the request is folded into it",
              (int)p->child, p->child_seq);
    return 0;
  }
  if (p->broken || persist_rotate_journal(p) != 0)
    return -1;
  char final[64];
  persist_snapshot_name(final, sizeof final, p->seq);
  snprintf(p->child_tmp, sizeof p->child_tmp, "%s.tmp-%ld-%u", final,
           (long)getpid(), ++p->tmp_counter);
  p->child_seq = p->seq;
  p->child_start_ns = apig_now_ns();
  if (fork_child(p, p->child_tmp, final) != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "snapshot of record %" PRIu64 " failed at fork: %s", p->seq,
              strerror(errno));
    p->stats.snapshot_failures++;
    return -1;
  }
  p->bytes_since_snapshot = 0;
  apig_logf(p->logger, APIG_LOG_INFO, NULL,
            "snapshot of record %" PRIu64 " started in child %d; fork took "
            "%.2f ms",
            p->seq, (int)p->child, (double)p->stats.last_fork_ns / 1e6);
  persist_send_go(p);
  return 0;
}

static void child_finished(apig_persist *p, int status) {
  persist_child_report report;
  memset(&report, 0, sizeof report);
  ssize_t n = read(p->child_report_fd, &report, sizeof report);
  int ok = n == (ssize_t)sizeof report && report.ok && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
  double ms = (double)(apig_now_ns() - p->child_start_ns) / 1e6;
  if (ok) {
    persist_snapshot_done(p, p->child_seq, report.bytes, ms);
  } else {
    char *tmp = persist_path(p->dir, p->child_tmp);
    if (tmp)
      unlink(tmp);
    apig_free(tmp);
    if (n == (ssize_t)sizeof report)
      apig_logf(p->logger, APIG_LOG_ERROR, NULL,
                "snapshot of record %" PRIu64 " failed at %s: %s",
                p->child_seq, report.step, strerror(report.error));
    else
      apig_logf(p->logger, APIG_LOG_ERROR, NULL,
                "snapshot child %d of record %" PRIu64 " ended without a "
                "result (status %d)",
                (int)p->child, p->child_seq, status);
    p->stats.snapshot_failures++;
  }
  close(p->child_go_fd);
  close(p->child_report_fd);
  p->child = 0;
}

/* Stops a running child: wait (1) lets it finish, else it is killed, and
 * a snapshot it had not reported stays unused. Blocks until it exits. */
void persist_stop_child(apig_persist *p, int wait) {
  if (p->child > 0 && wait && !p->go_sent) {
    persist_flush_sync(p); /* a failure stops the child itself */
    persist_send_go(p);
  }
  if (p->child <= 0)
    return;
  if (!wait)
    kill(p->child, SIGKILL);
  int status = 0;
  while (waitpid(p->child, &status, 0) < 0 && errno == EINTR)
    ;
  child_finished(p, status);
}

static void on_sigchld(uv_signal_t *handle, int signum) {
  apig_persist *p = handle->data;
  (void)signum;
  if (p->child <= 0)
    return;
  int status = 0;
  pid_t pid = waitpid(p->child, &status, WNOHANG);
  if (pid == 0 || (pid < 0 && errno != ECHILD))
    return;
  const apig_allocator *previous = apig_alloc_enter(p->options.allocator);
  child_finished(p, status);
  persist_check_journal_size(p);
  apig_alloc_leave(previous);
}

static void on_kick(uv_timer_t *timer) {
  apig_persist *p = timer->data;
  const apig_allocator *previous = apig_alloc_enter(p->options.allocator);
  if (p->child <= 0 && p->journal_max_reached)
    persist_start_child(p);
  apig_alloc_leave(previous);
}

static void on_interval(uv_timer_t *timer) {
  apig_persist *p = timer->data;
  const apig_allocator *previous = apig_alloc_enter(p->options.allocator);
  if (p->seq != p->snapshot_seq)
    persist_start_child(p);
  apig_alloc_leave(previous);
}

/* Starts a snapshot when the journal outgrew journal_max_bytes: later on
 * the loop, or at once without one. After a failed snapshot the journal
 * must grow by the limit again before the next try. */
void persist_check_journal_size(apig_persist *p) {
  uint64_t max = p->options.journal_max_bytes;
  p->journal_max_reached = max && p->bytes_since_snapshot >= max;
  if (!p->journal_max_reached || p->child > 0)
    return;
  if (p->loop) {
    uv_timer_start(&p->kick_timer, on_kick, 0, 0);
  } else if (apig_persist_snapshot(p, NULL) != 0) {
    p->bytes_since_snapshot = 0;
  }
}

int apig_persist_snapshot_background(apig_persist *p) {
  if (!p->loop)
    return apig_persist_snapshot(p, NULL);
  return persist_start_child(p);
}

int apig_persist_snapshot(apig_persist *p, const apig_store *store) {
  (void)store; /* always the store given to apig_persist_open */
  persist_stop_child(p, 1);
  if (p->broken || persist_flush_sync(p) != 0 ||
      persist_rotate_journal(p) != 0)
    return -1;
  char final[64], tmp[96];
  persist_snapshot_name(final, sizeof final, p->seq);
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%u", final, (long)getpid(),
           ++p->tmp_counter);
  int64_t start = apig_now_ns();
  snapshot_result result;
  if (snapshot_write_file(p->dir, tmp, final, p->store, p->seq, &p->faults,
                          -1, &result) != 0) {
    apig_logf(p->logger, APIG_LOG_ERROR, NULL,
              "snapshot of record %" PRIu64 " failed at %s: %s", p->seq,
              result.step, strerror(result.error));
    p->stats.snapshot_failures++;
    return -1;
  }
  /* The folder fsync after the rename also made the new journal's name
   * durable. */
  p->dir_dirty = 0;
  p->bytes_since_snapshot = 0;
  persist_snapshot_done(p, p->seq, result.bytes,
                        (double)(apig_now_ns() - start) / 1e6);
  return 0;
}

/* ---- attach, stats, close ---- */

static void detach(apig_persist *p) {
  uv_close((uv_handle_t *)&p->kick_timer, NULL);
  uv_close((uv_handle_t *)&p->interval_timer, NULL);
  uv_close((uv_handle_t *)&p->sigchld, NULL);
  persist_stop_child(p, 0);
  p->loop = NULL;
  if (!p->flushing && p->waiter_count > 0)
    persist_notify(p, persist_flush_sync(p) != 0);
}

void apig_persist_attach(apig_persist *p, uv_loop_t *loop,
                         const apig_store *store) {
  if (!p)
    return;
  if (!loop) {
    if (p->loop)
      detach(p);
    return;
  }
  (void)store; /* always the store given to apig_persist_open */
  if (p->loop)
    return;
  p->loop = loop;
  uv_timer_init(loop, &p->kick_timer);
  uv_timer_init(loop, &p->interval_timer);
  uv_signal_init(loop, &p->sigchld);
  p->kick_timer.data = p->interval_timer.data = p->sigchld.data = p;
  uv_signal_start(&p->sigchld, on_sigchld, SIGCHLD);
  uint64_t every = p->options.snapshot_interval_ms;
  if (every)
    uv_timer_start(&p->interval_timer, on_interval, every, every);
  uv_unref((uv_handle_t *)&p->kick_timer);
  uv_unref((uv_handle_t *)&p->interval_timer);
  uv_unref((uv_handle_t *)&p->sigchld);
  persist_check_journal_size(p);
}

void apig_persist_get_stats(const apig_persist *p,
                            apig_persist_stats *stats) {
  *stats = p->stats;
}

void apig_persist_close(apig_persist *p, const apig_store *store) {
  if (!p)
    return;
  if (p->loop)
    detach(p);
  persist_stop_child(p, 0);
  if (store && p->journal_fd >= 0 && !p->broken)
    apig_persist_snapshot(p, store);
  else if (p->journal_fd >= 0 && !p->broken)
    persist_flush_sync(p);
  persist_notify(p, p->synced_seq < p->seq);
  persist_close_files(p);
  close(p->lock_fd);
  apig_buf_free(&p->unwritten);
  apig_free(p->scratch.ops);
  apig_free(p->dir);
  apig_free(p);
}
