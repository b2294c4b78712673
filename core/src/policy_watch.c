/* Reloads the policy when its file changes on disk.
 *
 * The watch is on the file's folder, not on the file, because editors and
 * deploy tools often replace a file by writing a new one and renaming it
 * over the old name: a watch on the old inode would go quiet after the
 * first such save. Events for other names in the folder are ignored.
 *
 * Saving a file takes several events (truncate, writes, rename), so each
 * event restarts a short timer and the reload runs once the file has been
 * quiet for DEBOUNCE_MS. The reload runs on the event loop like a request
 * does, and a batch runs from start to answer within one callback, so no
 * batch ever sees two policies. A file that fails to load (a half-written
 * file included) keeps the previous policy, and the next change retries.
 */
#include "policy_watch.h"

#include <string.h>

#include "alloc.h"
#include "apig_impl.h"

#define DEBOUNCE_MS 50

typedef struct policy_watch {
  uv_fs_event_t event;
  uv_timer_t timer;
  apig_t *apig;
  char *dir, *name; /* the policy file's folder and base name */
  int open_handles; /* freed when both handles have closed */
} policy_watch;

static void watch_free(policy_watch *watch) {
  apig_free(watch->dir);
  apig_free(watch->name);
  apig_free(watch);
}

static void on_closed(uv_handle_t *handle) {
  policy_watch *watch = handle->data;
  if (--watch->open_handles == 0)
    watch_free(watch);
}

static void close_handles(policy_watch *watch) {
  uv_close((uv_handle_t *)&watch->event, on_closed);
  uv_close((uv_handle_t *)&watch->timer, on_closed);
}

static void on_quiet(uv_timer_t *timer) {
  policy_watch *watch = timer->data;
  apig_logf(&watch->apig->logger, APIG_LOG_INFO, NULL,
            "policy file %s changed: reloading", watch->apig->policy_file);
  apig_reload_policy(watch->apig);
}

/* filename is NULL when the kernel could not say which entry changed
 * (an inotify queue overflow); that may be the policy, so it counts. */
static void on_change(uv_fs_event_t *event, const char *filename, int events,
                      int status) {
  policy_watch *watch = event->data;
  (void)events;
  if (status < 0) {
    apig_logf(&watch->apig->logger, APIG_LOG_ERROR, NULL,
              "watching %s for policy changes failed: %s", watch->dir,
              uv_strerror(status));
    return;
  }
  if (filename && strcmp(filename, watch->name) != 0)
    return;
  uv_timer_start(&watch->timer, on_quiet, DEBOUNCE_MS, 0);
}

/* Splits path into its folder and base name. */
static int split_path(policy_watch *watch, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    watch->dir = apig_strdup(".");
    watch->name = apig_strdup(path);
  } else {
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    watch->dir = apig_strndup(path, len);
    watch->name = apig_strdup(slash + 1);
  }
  return watch->dir && watch->name ? 0 : -1;
}

static int start_handles(policy_watch *watch, uv_loop_t *loop) {
  int rc = uv_fs_event_init(loop, &watch->event);
  if (rc == 0) {
    watch->open_handles++;
    rc = uv_timer_init(loop, &watch->timer);
  }
  if (rc == 0) {
    watch->open_handles++;
    rc = uv_fs_event_start(&watch->event, on_change, watch->dir, 0);
  }
  return rc;
}

int apig_policy_watch_start(apig_t *apig, uv_loop_t *loop) {
  if (!apig || !apig->policy_file || apig->policy_watch)
    return -1;
  policy_watch *watch = apig_calloc(1, sizeof *watch);
  if (!watch || split_path(watch, apig->policy_file) != 0) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, NULL,
              "cannot watch policy file %s: out of memory",
              apig->policy_file);
    if (watch)
      watch_free(watch);
    return -1;
  }
  watch->apig = apig;
  watch->event.data = watch;
  watch->timer.data = watch;
  int rc = start_handles(watch, loop);
  if (rc != 0) {
    apig_logf(&apig->logger, APIG_LOG_ERROR, NULL,
              "cannot watch folder %s for policy changes: %s; SIGHUP still "
              "reloads the policy",
              watch->dir, uv_strerror(rc));
    if (watch->open_handles == 0)
      watch_free(watch);
    else if (watch->open_handles == 1)
      uv_close((uv_handle_t *)&watch->event, on_closed);
    else
      close_handles(watch);
    return -1;
  }
  apig->policy_watch = watch;
  apig_logf(&apig->logger, APIG_LOG_INFO, NULL,
            "watching policy file %s: a change reloads it",
            apig->policy_file);
  return 0;
}

void apig_policy_watch_stop(apig_t *apig) {
  if (!apig || !apig->policy_watch)
    return;
  policy_watch *watch = apig->policy_watch;
  apig->policy_watch = NULL;
  uv_fs_event_stop(&watch->event);
  uv_timer_stop(&watch->timer);
  close_handles(watch);
}
