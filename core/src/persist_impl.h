/* The state behind apig_persist, shared by persist.c (journal writes,
 * flushes, snapshots) and persist_load.c (start-up and reload). */
#ifndef APIG_PERSIST_IMPL_H
#define APIG_PERSIST_IMPL_H

#include <sys/types.h>

#include "persist.h"
#include "persist_io.h"
#include "snapshot.h"

/* Journal files whose tail is not flushed yet; a rotation happens once
 * per snapshot, so two are the norm. */
#define MAX_RETIRED 8

typedef struct persist_waiter {
  uint64_t seq;
  apig_durable_cb cb;
  void *arg;
} persist_waiter;

/* One fdatasync round on the thread pool; reads nothing else of the
 * handle while it runs. */
typedef struct persist_flush_job {
  uv_work_t work;
  struct apig_persist *persist;
  int fds[MAX_RETIRED + 1];
  size_t fd_count, retired_count;
  int sync_dir;
  uint64_t target_seq;
  persist_faults *faults;
  const char *dir;
  int rc, error;
  int64_t ns;
} persist_flush_job;

/* What a snapshot child sends back through its pipe before it exits. */
typedef struct persist_child_report {
  int ok, error;
  uint64_t bytes, records;
  char step[48];
} persist_child_report;

struct apig_persist {
  char *dir;
  apig_persist_options options;
  const apig_logger *logger;
  apig_store *store;
  persist_faults faults;
  op_scratch scratch;

  int lock_fd;             /* "lock", held with flock while open */
  int journal_fd;          /* current journal file, -1 when none */
  uint64_t journal_first;  /* sequence its name carries */
  off_t journal_size, last_record_offset; /* unwritten records included */
  /* Records appended but not written yet. While serving with fsync on,
   * the next flush writes them with one write() instead of one each. */
  apig_buf unwritten;
  uint64_t seq;            /* last record written */
  uint64_t synced_seq;     /* last record flushed */
  int retired[MAX_RETIRED];
  size_t retired_count;
  int dir_dirty;           /* a new file's name is not flushed yet */
  int broken;              /* the files cannot take changes until restart */
  uint64_t bytes_since_snapshot;
  int journal_max_reached;
  uint64_t snapshot_seq;   /* of the newest durable snapshot */

  uv_loop_t *loop;         /* NULL: synchronous flushes */
  persist_waiter *waiters;
  size_t waiter_count, waiter_cap;
  persist_flush_job job;
  int flushing;
  uv_timer_t kick_timer, interval_timer;
  uv_signal_t sigchld;

  pid_t child;             /* running snapshot child, 0 when none */
  uint64_t child_seq;
  int child_go_fd, child_report_fd, go_sent;
  char child_tmp[96];
  int64_t child_start_ns;
  unsigned tmp_counter;

  apig_persist_stats stats;
};

void persist_journal_name(char *out, size_t size, uint64_t first);
void persist_snapshot_name(char *out, size_t size, uint64_t seq);

int persist_flush_sync(apig_persist *p);
void persist_flush_failed(apig_persist *p);
void persist_notify(apig_persist *p, int failed);
void persist_cut_journal(apig_persist *p, off_t size);
int persist_rotate_journal(apig_persist *p);
void persist_send_go(apig_persist *p);
int persist_start_child(apig_persist *p);
void persist_stop_child(apig_persist *p, int wait);
void persist_check_journal_size(apig_persist *p);

/* Rebuilds p->store from the files, keeping records up to synced_seq and
 * cutting the rest from the journal. Returns 0, or -1 (the handle is then
 * broken and the old store stays). */
int persist_reload(apig_persist *p);
/* Records a durable snapshot of seq and deletes the files it covers. */
void persist_snapshot_done(apig_persist *p, uint64_t seq, uint64_t bytes,
                           double ms);
void persist_close_files(apig_persist *p);

#endif
